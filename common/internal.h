/* Private helpers of libseatgate, shared by its own .c files only. */
#ifndef SEATGATE_INTERNAL_H
#define SEATGATE_INTERNAL_H

#include <stddef.h>

/* Format a one-line error into err (if given) and return rc. */
int sg_err_rc(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
