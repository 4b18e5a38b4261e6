/* seatctl report: the license report of libseatgate's sg_report_pool, as
 * text, JSON or one self-contained HTML page (presentation only). */
#include "seatctl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void day_str(long long ms, char *buf, size_t len)
{
    char t[40];
    sg_fmt_rfc3339(ms, t, sizeof(t));
    snprintf(buf, len, "%.10s", t);
}

static const char *plural(long n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* The recommendation in one paragraph a finance reader follows. */
static void reasoning(const sg_report *r, char *buf, size_t len)
{
    char since[16], until[16], how[512];
    day_str(r->since_ms, since, sizeof(since));
    day_str(r->until_ms - 1, until, sizeof(until));
    double save = r->cost_now - r->cost_rec;
    if (r->rec_named > 0 && r->rec_floating > 0)
        snprintf(how, sizeof(how),
                 "Giving named seats to the %ld people who worked the most and sharing %ld "
                 "floating %s among everyone else",
                 r->rec_named, r->rec_floating, plural(r->rec_floating, "seat", "seats"));
    else if (r->rec_named > 0)
        snprintf(how, sizeof(how), "Giving a named seat to each of the %ld people", r->rec_named);
    else
        snprintf(how, sizeof(how), "Sharing %ld floating %s among everyone", r->rec_floating,
                 plural(r->rec_floating, "seat", "seats"));
    snprintf(
        buf, len,
        "From %s to %s, %ld %s worked in pool %s or asked for a seat. At most %ld floating %s "
        "were in use at once (%ld bought, besides %ld named). Time was cut into %ld-minute "
        "slots; a slot counts as denied when more people wanted to work than the seats could "
        "serve. %s would have served all but %.1f%% of the time (the budget was %.1f%%). At %g "
        "per named and %g per floating seat that costs %g, against %g for the %ld named and "
        "%ld floating seats owned today: %s %g.%s",
        since, until, r->users_seen, plural(r->users_seen, "person", "people"), r->pool,
        r->peak_floating, plural(r->peak_floating, "seat", "seats"), r->floating, r->named,
        r->bucket_s / 60, how, 100.0 * r->rec_denied_share, 100.0 * r->budget, r->price_named,
        r->price_floating, r->cost_rec, r->cost_now, r->named, r->floating,
        save >= 0 ? "a saving of" : "an extra cost of", fabs(save),
        r->now_denied_share > r->budget
            ? " With today's seats and assignments the same demand would have been denied "
              "more often than the budget allows."
            : "");
}

/* ---- JSON ------------------------------------------------------------------- */

static json_object *jstr(const char *s)
{
    return json_object_new_string(s);
}

static json_object *jint(long long v)
{
    return json_object_new_int64(v);
}

static json_object *jdbl(double v)
{
    return json_object_new_double(round(v * 1e6) / 1e6);
}

static json_object *report_json(const sg_report *r)
{
    char t[40], why[2048];
    json_object *j = json_object_new_object();
    json_object_object_add(j, "pool", jstr(r->pool));
    sg_fmt_rfc3339(r->since_ms, t, sizeof(t));
    json_object_object_add(j, "since", jstr(t));
    sg_fmt_rfc3339(r->until_ms, t, sizeof(t));
    json_object_object_add(j, "until", jstr(t));
    json_object_object_add(j, "bucket_seconds", jint(r->bucket_s));
    json_object *now = json_object_new_object();
    json_object_object_add(now, "named", jint(r->named));
    json_object_object_add(now, "assigned", jint(r->assigned));
    json_object_object_add(now, "floating", jint(r->floating));
    json_object_object_add(now, "overdraft_pct", jint(r->overdraft_pct));
    json_object_object_add(now, "cost", jdbl(r->cost_now));
    json_object_object_add(now, "denied_share", jdbl(r->now_denied_share));
    json_object_object_add(j, "today", now);
    json_object *rec = json_object_new_object();
    json_object_object_add(rec, "named", jint(r->rec_named));
    json_object_object_add(rec, "floating", jint(r->rec_floating));
    json_object_object_add(rec, "cost", jdbl(r->cost_rec));
    json_object_object_add(rec, "denied_share", jdbl(r->rec_denied_share));
    json_object_object_add(rec, "price_named", jdbl(r->price_named));
    json_object_object_add(rec, "price_floating", jdbl(r->price_floating));
    json_object_object_add(rec, "denial_budget", jdbl(r->budget));
    reasoning(r, why, sizeof(why));
    json_object_object_add(rec, "reasoning", jstr(why));
    json_object_object_add(j, "recommendation", rec);
    json_object_object_add(j, "users_seen", jint(r->users_seen));
    json_object_object_add(j, "peak_floating", jint(r->peak_floating));
    json_object *days = json_object_new_array();
    for (size_t i = 0; i < r->ndays; i++) {
        const sg_report_day *d = &r->days[i];
        json_object *o = json_object_new_object();
        day_str(d->day_ms, t, sizeof(t));
        json_object_object_add(o, "day", jstr(t));
        json_object_object_add(o, "peak", jint(d->peak));
        json_object_object_add(o, "p95", jint(d->p95));
        json_object_object_add(o, "mean", jdbl(d->avg));
        json_object_object_add(o, "users", jint(d->users));
        json_object_object_add(o, "named_users", jint(d->named_users));
        json_object_object_add(o, "denials", jint(d->denials));
        json_object_object_add(o, "overdraft", jint(d->overdraft));
        json_object_object_add(o, "free_requests", jint(d->free_requests));
        json_object_array_add(days, o);
    }
    json_object_object_add(j, "days", days);
    json_object *den = json_object_new_object();
    json_object_object_add(den, "total", jint(r->denials_total));
    json_object *by = json_object_new_object();
    for (size_t i = 0; i < r->nreasons; i++)
        json_object_object_add(by, r->reasons[i].reason, jint(r->reasons[i].count));
    json_object_object_add(den, "by_reason", by);
    json_object *hours = json_object_new_array();
    for (int h = 0; h < 24; h++)
        json_object_array_add(hours, jint(r->denials_by_hour[h]));
    json_object_object_add(den, "by_hour_utc", hours);
    json_object_object_add(j, "denials", den);
    json_object_object_add(j, "overdraft_days", jint(r->overdraft_days));
    json_object_object_add(j, "free_requests", jint(r->free_total));
    json_object *idle = json_object_new_array();
    for (size_t i = 0; i < r->nidle; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "user", jstr(r->idle[i].user));
        if (r->idle[i].lastused > 0) {
            sg_fmt_rfc3339(r->idle[i].lastused, t, sizeof(t));
            json_object_object_add(o, "last_used", jstr(t));
        } else {
            json_object_object_add(o, "last_used", NULL);
        }
        json_object_array_add(idle, o);
    }
    json_object_object_add(j, "named_unused_30d", idle);
    json_object *mux = json_object_new_array();
    for (size_t i = 0; i < r->nmux; i++) {
        const sg_report_mux *m = &r->mux[i];
        json_object *o = json_object_new_object();
        day_str(m->day_ms, t, sizeof(t));
        json_object_object_add(o, "day", jstr(t));
        json_object_object_add(o, "service_account", jstr(m->account));
        json_object_object_add(o, "humans", jint(m->nhumans));
        json_object *hs = json_object_new_array();
        for (long k = 0; m->humans && k < m->nhumans; k++)
            json_object_array_add(hs, jstr(m->humans[k]));
        json_object_object_add(o, "people", hs);
        json_object_object_add(o, "over_limit", json_object_new_boolean(m->over_limit));
        json_object_object_add(o, "without_on_behalf_of", jint(m->without_obo));
        json_object_array_add(mux, o);
    }
    json_object_object_add(j, "multiplexing", mux);
    return j;
}

/* ---- text -------------------------------------------------------------------- */

static void report_text(FILE *f, const sg_report *r)
{
    char a[40], b[16], why[2048];
    day_str(r->since_ms, a, sizeof(a));
    day_str(r->until_ms - 1, b, sizeof(b));
    fprintf(f, "pool %s, %s to %s (%ld-minute slots)\n\n", r->pool, a, b, r->bucket_s / 60);
    fprintf(f, "%-12s %6s %6s %7s %6s %7s %8s %9s\n", "DAY", "PEAK", "P95", "MEAN", "USERS",
            "DENIED", "OVERDR.", "FREE");
    for (size_t i = 0; i < r->ndays; i++) {
        const sg_report_day *d = &r->days[i];
        day_str(d->day_ms, a, sizeof(a));
        fprintf(f, "%-12s %6ld %6ld %7.2f %6ld %7ld %8ld %9ld\n", a, d->peak, d->p95, d->avg,
                d->users, d->denials, d->overdraft, d->free_requests);
    }
    fprintf(f, "\ndenials: %ld", r->denials_total);
    for (size_t i = 0; i < r->nreasons; i++)
        fprintf(f, "%s%s %ld", i ? ", " : " (", r->reasons[i].reason, r->reasons[i].count);
    fprintf(f, "%s\n", r->nreasons ? ")" : "");
    if (r->denials_total) {
        fprintf(f, "denials by hour (UTC):");
        for (int h = 0; h < 24; h++)
            if (r->denials_by_hour[h])
                fprintf(f, " %02d:%ld", h, r->denials_by_hour[h]);
        fputc('\n', f);
    }
    fprintf(f, "overdraft used on %ld %s; free tier: %ld requests\n", r->overdraft_days,
            plural(r->overdraft_days, "day", "days"), r->free_total);
    fprintf(f, "named seats unused for 30 days or more: %zu", r->nidle);
    for (size_t i = 0; i < r->nidle; i++) {
        fmt_time(r->idle[i].lastused, a, sizeof(a));
        fprintf(f, "%s%s (last %s)", i ? ", " : ": ", r->idle[i].user,
                r->idle[i].lastused ? a : "never");
    }
    fputc('\n', f);
    fprintf(f, "multiplexing findings: %zu\n", r->nmux);
    for (size_t i = 0; i < r->nmux; i++) {
        const sg_report_mux *m = &r->mux[i];
        day_str(m->day_ms, a, sizeof(a));
        fprintf(f, "  %s %s acted for %ld %s", a, m->account, m->nhumans,
                plural(m->nhumans, "person", "people"));
        if (m->over_limit)
            fprintf(f, " (limit %ld)", r->mux_limit);
        if (m->without_obo)
            fprintf(f, ", %ld requests without an on-behalf-of id", m->without_obo);
        for (long k = 0; m->humans && k < m->nhumans; k++)
            fprintf(f, "%s%s", k ? ", " : ": ", m->humans[k]);
        fputc('\n', f);
    }
    fprintf(f, "\n%-26s %8s %9s %12s %9s\n", "", "NAMED", "FLOATING", "COST", "DENIED");
    fprintf(f, "%-26s %8ld %9ld %12g %8.1f%%\n", "today", r->named, r->floating, r->cost_now,
            100.0 * r->now_denied_share);
    fprintf(f, "%-26s %8ld %9ld %12g %8.1f%%\n", "recommended", r->rec_named, r->rec_floating,
            r->cost_rec, 100.0 * r->rec_denied_share);
    reasoning(r, why, sizeof(why));
    fprintf(f, "\n%s\n", why);
}

/* ---- HTML ---------------------------------------------------------------------
 * One self-contained page: inline CSS and SVG, no script, no font or image
 * from anywhere; readable on a phone (fluid width) and in print. */

static void esc(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*s, f);
        }
}

/* a top for the y axis whose four grid steps are whole numbers */
static long nice_max(long v)
{
    long step = 1;
    while (step * 4 < v)
        step = step < 5 ? step + 1 : (step < 10 ? 10 : step * 2);
    return step * 4;
}

static void chart_frame(FILE *f, const char *id, const char *title, long ymax, int w, int h)
{
    fprintf(f, "<figure><svg id=\"%s\" role=\"img\" viewBox=\"0 0 %d %d\" "
               "xmlns=\"http://www.w3.org/2000/svg\"><title>", id, w, h);
    esc(f, title);
    fputs("</title>", f);
    for (int k = 0; k <= 4; k++) {
        double y = 20 + (h - 50) * (1 - k / 4.0);
        fprintf(f, "<line class=\"grid\" x1=\"40\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
                   "<text class=\"ax\" x=\"34\" y=\"%.1f\" text-anchor=\"end\">%g</text>",
                w - 10, y, y, y + 4, (double)ymax * k / 4.0);
    }
}

static void chart_usage(FILE *f, const sg_report *r, int n)
{
    const int w = 800, h = 280;
    long ymax = r->floating > r->rec_floating ? r->floating : r->rec_floating;
    for (size_t i = 0; i < r->ndays; i++)
        if (r->days[i].peak > ymax)
            ymax = r->days[i].peak;
    ymax = nice_max(ymax);
    char id[32];
    snprintf(id, sizeof(id), "chart-usage-%d", n);
    chart_frame(f, id, "Floating seats in use by day: peak and p95", ymax, w, h);
    double bw = (double)(w - 60) / (double)(r->ndays ? r->ndays : 1);
    for (size_t i = 0; i < r->ndays; i++) {
        const sg_report_day *d = &r->days[i];
        double x = 45 + bw * (double)i, ph = (h - 50) * (double)d->peak / (double)ymax,
               qh = (h - 50) * (double)d->p95 / (double)ymax;
        char day[16];
        day_str(d->day_ms, day, sizeof(day));
        fprintf(f, "<rect class=\"peak\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
                   "<title>%s: peak %ld, p95 %ld</title></rect>",
                x, h - 30 - ph, bw * 0.8, ph, day, d->peak, d->p95);
        fprintf(f, "<rect class=\"p95\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
                x, h - 30 - qh, bw * 0.8, qh);
        if (r->ndays <= 31 || i % 7 == 0)
            fprintf(f, "<text class=\"ax\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.5s</text>",
                    x + bw * 0.4, h - 14, day + 5);
    }
    double yb = h - 30 - (h - 50) * (double)r->floating / (double)ymax;
    double yr = h - 30 - (h - 50) * (double)r->rec_floating / (double)ymax;
    fprintf(f, "<line class=\"bought\" x1=\"40\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
               "<text class=\"lbl bought-t\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">bought %ld</text>",
            w - 10, yb, yb, w - 12, yb - 4, r->floating);
    fprintf(f, "<line class=\"rec\" x1=\"40\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
               "<text class=\"lbl rec-t\" x=\"46\" y=\"%.1f\">recommended %ld</text>",
            w - 10, yr, yr, yr - 4, r->rec_floating);
    fputs("</svg><figcaption>Floating seats in use each day (light: peak, dark: 95th "
          "percentile), with the seats bought and the seats recommended.</figcaption></figure>\n",
          f);
}

static void chart_hours(FILE *f, const sg_report *r, int n)
{
    const int w = 800, h = 220;
    long ymax = 1;
    for (int k = 0; k < 24; k++)
        if (r->denials_by_hour[k] > ymax)
            ymax = r->denials_by_hour[k];
    ymax = nice_max(ymax);
    char id[32];
    snprintf(id, sizeof(id), "chart-hours-%d", n);
    chart_frame(f, id, "Denials by hour of day (UTC)", ymax, w, h);
    double bw = (double)(w - 60) / 24.0;
    for (int k = 0; k < 24; k++) {
        double x = 45 + bw * k, bh = (h - 50) * (double)r->denials_by_hour[k] / (double)ymax;
        fprintf(f, "<rect class=\"deny\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
                   "<title>%02d:00 UTC: %ld</title></rect>"
                   "<text class=\"ax\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%02d</text>",
                x, h - 30 - bh, bw * 0.8, bh, k, r->denials_by_hour[k], x + bw * 0.4, h - 14, k);
    }
    fputs("</svg><figcaption>Denied requests and logins by hour of day (UTC).</figcaption>"
          "</figure>\n",
          f);
}

static void chart_reasons(FILE *f, const sg_report *r, int n)
{
    const int w = 800, rowh = 26;
    int h = 20 + rowh * (int)(r->nreasons ? r->nreasons : 1);
    long vmax = 1;
    for (size_t i = 0; i < r->nreasons; i++)
        if (r->reasons[i].count > vmax)
            vmax = r->reasons[i].count;
    fprintf(f, "<figure><svg id=\"chart-reasons-%d\" role=\"img\" viewBox=\"0 0 %d %d\" "
               "xmlns=\"http://www.w3.org/2000/svg\"><title>Denials by reason</title>",
            n, w, h);
    if (r->nreasons == 0)
        fputs("<text class=\"lbl\" x=\"10\" y=\"24\">no denials</text>", f);
    for (size_t i = 0; i < r->nreasons; i++) {
        double bw = 480.0 * (double)r->reasons[i].count / (double)vmax;
        int y = 10 + rowh * (int)i;
        fprintf(f, "<text class=\"lbl\" x=\"250\" y=\"%d\" text-anchor=\"end\">", y + 16);
        esc(f, r->reasons[i].reason);
        fprintf(f, "</text><rect class=\"deny\" x=\"260\" y=\"%d\" width=\"%.1f\" height=\"18\"/>"
                   "<text class=\"lbl\" x=\"%.1f\" y=\"%d\">%ld</text>",
                y + 2, bw, 266 + bw, y + 16, r->reasons[i].count);
    }
    fputs("</svg><figcaption>Denials by reason.</figcaption></figure>\n", f);
}

static void report_html_pool(FILE *f, const sg_report *r, int n)
{
    char a[16], b[16], why[2048], t[40];
    day_str(r->since_ms, a, sizeof(a));
    day_str(r->until_ms - 1, b, sizeof(b));
    fputs("<section><h2>Pool ", f);
    esc(f, r->pool);
    fprintf(f, "</h2><p class=\"range\">%s to %s</p>\n", a, b);
    fprintf(f, "<table class=\"cmp\"><thead><tr><th></th><th>Named</th><th>Floating</th>"
               "<th>Cost</th><th>Time denied</th></tr></thead><tbody>"
               "<tr><th>Today</th><td>%ld</td><td>%ld</td><td>%g</td><td>%.1f%%</td></tr>"
               "<tr class=\"rec\"><th>Recommended</th><td>%ld</td><td>%ld</td><td>%g</td>"
               "<td>%.1f%%</td></tr></tbody></table>\n",
            r->named, r->floating, r->cost_now, 100.0 * r->now_denied_share, r->rec_named,
            r->rec_floating, r->cost_rec, 100.0 * r->rec_denied_share);
    reasoning(r, why, sizeof(why));
    fputs("<p class=\"why\">", f);
    esc(f, why);
    fputs("</p>\n", f);
    chart_usage(f, r, n);
    chart_hours(f, r, n);
    chart_reasons(f, r, n);
    fprintf(f, "<h3>Named seats unused for 30 days or more (%zu)</h3>", r->nidle);
    if (r->nidle) {
        fputs("<table><thead><tr><th>User</th><th>Last used</th></tr></thead><tbody>", f);
        for (size_t i = 0; i < r->nidle; i++) {
            fputs("<tr><td>", f);
            esc(f, r->idle[i].user);
            fmt_time(r->idle[i].lastused, t, sizeof(t));
            fprintf(f, "</td><td>%s</td></tr>", r->idle[i].lastused ? t : "never");
        }
        fputs("</tbody></table>\n", f);
    } else {
        fputs("<p>None.</p>\n", f);
    }
    fprintf(f, "<h3>Service accounts (%zu %s)</h3>", r->nmux,
            plural((long)r->nmux, "finding", "findings"));
    if (r->nmux) {
        fputs("<table><thead><tr><th>Day</th><th>Account</th><th>People</th>"
              "<th>Without on-behalf-of</th></tr></thead><tbody>",
              f);
        for (size_t i = 0; i < r->nmux; i++) {
            const sg_report_mux *m = &r->mux[i];
            day_str(m->day_ms, a, sizeof(a));
            fprintf(f, "<tr><td>%s</td><td>", a);
            esc(f, m->account);
            fprintf(f, "</td><td>%ld%s", m->nhumans, m->over_limit ? " (over the limit)" : "");
            for (long k = 0; m->humans && k < m->nhumans; k++) {
                fputs(k ? ", " : ": ", f);
                esc(f, m->humans[k]);
            }
            fprintf(f, "</td><td>%ld</td></tr>", m->without_obo);
        }
        fputs("</tbody></table>\n", f);
    } else {
        fputs("<p>None.</p>\n", f);
    }
    fprintf(f, "<p class=\"small\">Overdraft used on %ld %s. Free tier: %ld requests. "
               "%ld denials in all.</p></section>\n",
            r->overdraft_days, plural(r->overdraft_days, "day", "days"), r->free_total,
            r->denials_total);
}

static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>seatgate license report</title><style>\n"
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;"
    "max-width:60rem;padding:1rem;color:#1b1f24;line-height:1.45}\n"
    "h1{font-size:1.5rem}h2{font-size:1.25rem;border-bottom:1px solid #ccd;padding-bottom:.2rem;"
    "margin-top:2rem}h3{font-size:1rem}\n"
    "table{border-collapse:collapse;margin:.5rem 0;font-size:.95rem}"
    "th,td{padding:.25rem .6rem;text-align:left;border-bottom:1px solid #e3e6ea}"
    "table.cmp td{text-align:right}"
    "\n"
    "tr.rec{font-weight:600;background:#eef7ee}.why{background:#f6f8fa;padding:.75rem;"
    "border-left:4px solid #2f7d32}\n"
    "figure{margin:1rem 0}svg{width:100%;height:auto}figcaption{font-size:.85rem;color:#57606a}\n"
    ".grid{stroke:#e3e6ea}.ax{font-size:11px;fill:#57606a}.lbl{font-size:13px;fill:#1b1f24}"
    ".peak{fill:#9ecae1}.p95{fill:#3182bd}.deny{fill:#e6550d}"
    ".bought{stroke:#c62828;stroke-width:2;stroke-dasharray:6 4}"
    ".rec{stroke:#2f7d32;stroke-width:2;stroke-dasharray:2 3}.bought-t{fill:#c62828}"
    ".rec-t{fill:#2f7d32}.small,.range{font-size:.9rem;color:#57606a}\n"
    "@media print{body{max-width:none}section{break-inside:avoid-page}}\n"
    "</style></head><body>\n";

static void report_html(FILE *f, const sg_report *rs, size_t n, long long made_ms)
{
    char t[40];
    fputs(html_head, f);
    fmt_time(made_ms, t, sizeof(t));
    fprintf(f, "<h1>License report</h1><p class=\"small\">Made by seatgate at %s from the "
               "usage records of %zu %s.</p>\n",
            t, n, plural((long)n, "pool", "pools"));
    for (size_t i = 0; i < n; i++)
        report_html_pool(f, &rs[i], (int)i);
    fputs("</body></html>\n", f);
}

/* ---- the command ---------------------------------------------------------------- */

int cmd_report(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    int fmt = 0; /* 0 text, 1 json, 2 html */
    if (o->format) {
        if (strcmp(o->format, "json") == 0)
            fmt = 1;
        else if (strcmp(o->format, "html") == 0)
            fmt = 2;
        else if (strcmp(o->format, "text") != 0)
            die_usage("--format takes text, json or html, not '%s'", o->format);
    }
    if (json_out) {
        if (fmt == 2)
            die_usage("--json and --format html do not go together");
        fmt = 1;
    }
    sg_report_query q = {.price_named = o->price_named >= 0 ? o->price_named : 1,
                         .price_floating = o->price_floating >= 0 ? o->price_floating : 2,
                         .budget = (o->budget_pct >= 0 ? o->budget_pct : 1) / 100.0};
    long long now = sg_server_time_ms(c);
    if (now < 0)
        return report_err(SG_EBACKEND, "redis: TIME failed");
    if (o->since && sg_parse_time(o->since, now, &q.since_ms) != 0)
        die_usage("--since takes an RFC 3339 time, a date or a duration ago (30d), not '%s'",
                  o->since);
    if (o->until && sg_parse_time(o->until, now, &q.until_ms) != 0)
        die_usage("--until takes an RFC 3339 time, a date or a duration ago, not '%s'", o->until);
    /* the pools: one, or every pool */
    char **names = NULL;
    size_t n = 0;
    if (o->pool_filter) {
        if (sg_valid_name(o->pool_filter, err, sizeof(err)) != 0)
            die_usage("--pool: %s", err);
        names = calloc(1, sizeof(char *));
        if (names == NULL || (names[0] = strdup(o->pool_filter)) == NULL)
            return report_err(SG_EBACKEND, "out of memory");
        n = 1;
    } else {
        int rc = sg_pool_list(c, &names, &n, err, sizeof(err));
        if (rc != SG_OK)
            return report_err(rc, err);
    }
    sg_report *rs = calloc(n ? n : 1, sizeof(*rs));
    if (rs == NULL)
        return report_err(SG_EBACKEND, "out of memory");
    int rc = SG_OK;
    size_t done = 0;
    for (; done < n && rc == SG_OK; done++)
        rc = sg_report_pool(c, names[done], &q, &rs[done], err, sizeof(err));
    if (rc != SG_OK)
        done--;
    FILE *f = stdout;
    if (rc == SG_OK && o->out && strcmp(o->out, "-") != 0) {
        f = fopen(o->out, "we");
        if (f == NULL) {
            fprintf(stderr, "seatctl: %s: %s\n", o->out, strerror(errno));
            rc = -1;
        }
    }
    if (rc == SG_OK) {
        if (fmt == 1) {
            json_object *arr = json_object_new_array();
            for (size_t i = 0; i < n; i++)
                json_object_array_add(arr, report_json(&rs[i]));
            json_object *j = json_object_new_object();
            json_object_object_add(j, "pools", arr);
            fputs(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN), f);
            fputc('\n', f);
            json_object_put(j);
        } else if (fmt == 2) {
            report_html(f, rs, n, now);
        } else {
            for (size_t i = 0; i < n; i++) {
                if (i)
                    fputs("\n\n", f);
                report_text(f, &rs[i]);
            }
        }
        if (f != stdout && fclose(f) != 0) {
            fprintf(stderr, "seatctl: %s: %s\n", o->out, strerror(errno));
            rc = -1;
        }
    }
    for (size_t i = 0; i < done; i++)
        sg_report_free(&rs[i]);
    free(rs);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc == -1)
        return EX_USAGE;
    return rc == SG_OK ? EX_OK : report_err(rc, err);
}
