/* CSV import of users, CSV quoting, RFC 3339 times (common/csv.c).
 * Included by seatgate.h; no nginx or PAM types. */
#ifndef SG_CSV_H
#define SG_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "seatgate.h" /* SG_IDENT_MAX; this header is included at its end */

/* ---- user lists (seatctl assign|unassign --from FILE|-) --------------------
 * One user a line; LF or CRLF; blank lines and lines starting with '#' are
 * skipped; a UTF-8 byte order mark at the start is skipped; each user is an
 * identity (sg_valid_ident). 0 with *users (malloc'd strings, free with
 * sg_strv_free) and *n >= 1, or -1 with err "line L: reason", "the file
 * holds a NUL byte" or "no user in it", and nothing allocated.
 */
int sg_user_list_parse(const char *buf, size_t len, char ***users, size_t *n, char *err,
                       size_t errlen);

/* ---- user import (seatctl user import [FILE|-]) ----------------------------
 * RFC 4180: fields may be quoted with "..." ("" inside quotes is a quote) and
 * then may hold commas and line breaks; lines end with LF or CRLF (a CR
 * anywhere else outside quotes is an error); a UTF-8 byte order mark at the
 * start is skipped; blank lines are skipped; the last line needs no line end.
 * Values are taken as written: no spaces are trimmed, a quote inside an
 * unquoted field is an error.
 *
 * The first line is the header: exactly the columns user, groups, disabled,
 * service_account in any order (case-insensitive, surrounding spaces and tabs
 * trimmed). Each row: user is an identity (sg_valid_ident); groups are
 * separated by ';' ("" = none), each a valid group (sg_valid_group), repeats
 * dropped, at most SG_CSV_GROUPS_MAX, joined with ',' into groups[];
 * disabled and service_account are 0 or 1 ("" = 0). A user may appear once.
 */
#define SG_CSV_GROUPS_MAX 64
#define SG_CSV_GROUPS_LEN 1100 /* bytes of sg_user_row.groups, with the NUL */

typedef struct {
    char user[SG_IDENT_MAX + 1];
    char groups[SG_CSV_GROUPS_LEN]; /* "g1,g2" comma separated, "" none */
    int disabled, service;
    long line; /* line of the file where the row starts */
} sg_user_row;

/* Parses the whole buffer (it may hold NUL bytes; a field containing one is
 * an error). Returns 0 with *rows (malloc'd, never NULL, free with free())
 * and *n (0 for a header alone), or -1 with *rows NULL, *n 0 and a one-line
 * error in err: "line L, field F: reason" (F the column name) or
 * "line L: reason" when no field applies. All or nothing. Errors are
 * reported in file order: the first bad line wins, a repeated user is
 * reported on the line of its second appearance and names the first. */
int sg_user_csv_parse(const char *buf, size_t len, sg_user_row **rows, size_t *n, char *err,
                      size_t errlen);

/* ---- any CSV with a header (seatctl sync) ------------------------------------
 * The same RFC 4180 reading as above, for any columns: the header names them
 * (surrounding spaces and tabs trimmed; empty or repeated names, compared
 * without case, are errors) and every row has as many fields. Values are
 * taken as written. Errors: "line L, field F: reason" or "line L: reason";
 * all or nothing. */
typedef struct {
    size_t ncols;
    char **cols;   /* the header */
    size_t nrows;
    char ***rows;  /* rows[i][j]: row i, column j */
    long *lines;   /* the line each row starts on */
} sg_csv_table;

int sg_csv_table_parse(const char *buf, size_t len, sg_csv_table *t, char *err, size_t errlen);
void sg_csv_table_free(sg_csv_table *t);
/* index of the column named name (without case), -1 if none */
long sg_csv_table_col(const sg_csv_table *t, const char *name);

/* ---- CSV output ------------------------------------------------------------
 * Writes s (NULL = "") to f as one RFC 4180 field, without separator or line
 * end. It is quoted when it contains a comma, a quote, CR or LF or starts or
 * ends with a space or tab; quotes inside are doubled.
 *
 * Spreadsheet formula injection guard: a value starting with '=', '+', '-',
 * '@', TAB or CR is always quoted and gets a single quote (') in front of it,
 * inside the quotes: "=1+2" is written as "'=1+2". Spreadsheets then show it
 * as text instead of running it. A reader of the file sees the extra quote,
 * so such values do not round-trip byte for byte. Write errors are left in
 * ferror(f). */
void sg_csv_field(FILE *f, const char *s);

/* ---- times -------------------------------------------------------------------
 * sg_parse_time accepts (for --since/--until and the like):
 *   RFC 3339 "2026-11-29T10:00:00Z", "2026-11-29T10:00:00.250+02:00"
 *            (T/Z in either case; 1 to 9 fraction digits, cut to milliseconds;
 *            offset Z or +HH:MM / -HH:MM; no leap second 60)
 *   a date   "2026-11-29" (00:00 UTC)
 *   "now"    now_ms
 *   "@MS"    milliseconds since the epoch, digits only ("@1795946448964")
 *   DURATION that long before now_ms: "900", "90s", "15m", "2h", "7d"
 *            (sg_parse_duration)
 * Strict: anything else, trailing characters, impossible dates (02-30),
 * hour > 23 and the like, years past 9999 and times before 1970 are errors.
 * Returns 0 with *out_ms set, or -1 leaving it unchanged. */
int sg_parse_time(const char *s, long long now_ms, long long *out_ms);

/* ms since the epoch -> "2026-11-29T10:00:00.123Z" (UTC, always milliseconds;
 * 25 bytes with the NUL). Truncated to fit len. */
void sg_fmt_rfc3339(long long ms, char *buf, size_t len);
#define SG_RFC3339_LEN 25

#endif
