/* What libdevlist.so exports: the library is built with hidden visibility, and only the
 * declarations marked DEVLIST_API (the C API and the C++ façade) are visible to programs that
 * load it (DEVLIST_LOCAL keeps a member of an exported class inside). C and C++. */
#ifndef DEVLIST_EXPORT_H
#define DEVLIST_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define DEVLIST_API __attribute__((visibility("default")))
#define DEVLIST_LOCAL __attribute__((visibility("hidden")))
#else
#define DEVLIST_API
#define DEVLIST_LOCAL
#endif

#endif /* DEVLIST_EXPORT_H */
