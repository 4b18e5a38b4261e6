/* This host's stable id and process identity for session leases (common/host.c).
 * Included by seatgate.h; no nginx or PAM types. */
#ifndef SG_HOST_H
#define SG_HOST_H

#include <stddef.h>

#define SG_HOST_ID_MAX 64 /* bytes in a host id */
#define SG_BOOT_ID_LEN 36 /* bytes in a boot id, without the NUL */

/* The stable, unique id of this host (session ids, per-host session index):
 *   configured, if non-empty: 1 to 64 of [A-Za-z0-9._-];
 *   else the first line of /etc/machine-id (32 lowercase hex digits); the
 *        environment variable SEATGATE_MACHINE_ID_FILE replaces that path
 *        (for tests; ignored in setuid/setgid programs: secure_getenv);
 *   else the first line of /var/lib/dbus/machine-id.
 * A machine-id file that is missing or does not hold a valid id is skipped.
 * Returns 0 with the id in buf, or -1 with a one-line error in err
 * ("no host id: set host_id in the config or create /etc/machine-id" when
 * neither file exists). buf needs SG_HOST_ID_MAX + 1 bytes for any id. */
int sg_host_id(const char *configured, char *buf, size_t len, char *err, size_t errlen);

/* Start time of process pid in clock ticks since boot (field 22 of
 * /proc/PID/stat). 0 ok; -1 if the process does not exist, pid is out of
 * range or the file cannot be read or parsed. A zombie still has one. */
/* sg_host_id, else a stand-in made of the host name (letters, digits, '.'
 * and '-' kept, any other byte '_', "localhost" when empty): 0 with the
 * real id, 1 with the stand-in (err says why there is no real id). */
int sg_host_id_or_name(const char *configured, char *buf, size_t len, char *err,
                       size_t errlen);

/* A PAM session id, unique across hosts and across processes that reuse a
 * pid: "pam-<host id>-<pid>-<process start time>". */
void sg_pam_session_id(const char *host_id, long pid, unsigned long long pstart, char *buf,
                       size_t len);

int sg_proc_start(long pid, unsigned long long *start_ticks);

/* /proc/sys/kernel/random/boot_id ("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx").
 * buf needs SG_BOOT_ID_LEN + 1 bytes. 0 ok, -1 error. */
int sg_boot_id(char *buf, size_t len);

/* Is pid still the process that had start_ticks on boot boot_id (NULL or ""
 * = don't check the boot)?
 *   1  yes: it is alive, with that start time, on that boot;
 *   0  no: there is no such process (kill gives ESRCH), it is a zombie
 *      (exited, not yet reaped), its start time differs (the pid was reused)
 *      or the host rebooted since;
 *  -1  can't tell: /proc or the boot id is unreadable, /proc/PID is hidden
 *      (hidepid) while the process exists, or pid <= 0: the caller must
 *      assume it is alive.
 * Other users' processes count like our own (kill's EPERM means it exists). */
int sg_proc_same(long pid, unsigned long long start_ticks, const char *boot_id);

#endif
