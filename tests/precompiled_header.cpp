// Compiles nothing of its own: the target devlist_test_pch exists to build the precompiled
// header that the test programs share (tests/CMakeLists.txt).
