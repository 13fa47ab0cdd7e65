/* A C program on the installed C API: it links, loads, and gets the library's answers. */
#include <devlist/devlist.h>

#include <stdio.h>
#include <string.h>

int main(void) {
    char* error = NULL;
    devlist_handle* d = devlist_create_from_config_string("homeserver = 1\n", "/", &error);
    if (d != NULL || error == NULL || strstr(error, "'homeserver'") == NULL) {
        fprintf(stderr, "expected an error naming 'homeserver', got %s\n", error ? error : "none");
        return 1;
    }
    printf("devlist %s refuses a bad configuration: %s\n", devlist_version(), error);
    devlist_free_string(error);
    return 0;
}
