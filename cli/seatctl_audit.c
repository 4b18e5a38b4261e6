/* seatctl audit: export the audit log as JSON lines or CSV (presentation only). */
#include "seatctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_audit(opts_t *o, sg_conn *c)
{
    (void)o;
    (void)c;
    die_usage("audit: not yet");
}
