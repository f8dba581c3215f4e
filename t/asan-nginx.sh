#!/bin/sh
# nginx with an AddressSanitizer-built module (make test-asan): libasan
# must be loaded first; reports go to stderr, which nginx points at its
# error log, where the test runner fails on "ERROR: AddressSanitizer".
LD_PRELOAD=$(gcc -print-file-name=libasan.so)
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:halt_on_error=1}
export LD_PRELOAD ASAN_OPTIONS
exec /usr/sbin/nginx "$@"
