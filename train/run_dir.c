/* train/run_dir.c — a new run and the checkpoints already in its directory
 * (see run_dir.h). */
#include "train/run_dir.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "io/ckpt.h"

/* --overwrite: the earlier run's checkpoints go before this run writes
 * (the checkpoint resumed from, if it was one of them, is already in memory). */
static void run_dir_start_over(const Config *c, const char *ckdir) {
    int n = ckpt_remove_all(ckdir);
    fprintf(stderr, "notice: %s: --overwrite: removed %d checkpoint%s of an earlier run from %s\n", c->source, n,
            n == 1 ? "" : "s", ckdir);
}

void run_dir_claim(const Config *c, const char *ckdir, const char *resumed_file, const char *resumed_id, int explicit,
                   char *run_id, size_t n) {
    if (!resumed_file) {
        uint64_t newest = 0;
        int count = ckpt_count(ckdir, &newest);
        if (ckpt_exists(ckdir)) {
            if (!c->overwrite) {
                char what[1300];
                if (count > 0)
                    snprintf(what, sizeof what, "%d checkpoint%s of an earlier run (the newest %s/ckpt-%08llu.h5)",
                             count, count == 1 ? "" : "s", ckdir, (unsigned long long)newest);
                else snprintf(what, sizeof what, "a 'latest' file of an earlier run in %s", ckdir);
                FAIL("%s: run.out_dir %s already holds %s, and this run starts afresh: continue that run with "
                     "--resume auto, give this run another run.out_dir, or pass --overwrite to delete them and "
                     "start over",
                     c->source, c->out_dir, what);
            }
            run_dir_start_over(c, ckdir);
        }
        ckpt_new_run_id(run_id, n);
        return;
    }
    if (explicit) {
        /* The directory's own run is the one its "latest" names. */
        char latest[1100], theirs[CKPT_RUN_ID_MAX] = "";
        snprintf(latest, sizeof latest, "%s/latest", ckdir);
        if (access(latest, F_OK) == 0) {
            char file[1400] = "";
            FILE *f = fopen(latest, "r");
            char name[256] = "";
            if (f && fgets(name, sizeof name, f)) {
                name[strcspn(name, "\r\n")] = 0;
                snprintf(file, sizeof file, "%s/%s", ckdir, name);
            }
            if (f) fclose(f);
            if (file[0] && ckpt_read_run_id(file, theirs, sizeof theirs) == 0 && strcmp(theirs, resumed_id) != 0) {
                if (!c->overwrite)
                    FAIL("%s: run.out_dir %s holds another run's checkpoints (%s, run '%s') than %s (run '%s'), "
                         "which this run resumes from: continue the directory's own run with --resume auto, give "
                         "this run another run.out_dir, or pass --overwrite to delete them",
                         c->source, c->out_dir, file, theirs, resumed_file, resumed_id);
                run_dir_start_over(c, ckdir);
            }
        }
    }
    if (resumed_id[0]) {
        snprintf(run_id, n, "%s", resumed_id);
        return;
    }
    ckpt_new_run_id(run_id, n);
    fprintf(stderr, "notice: %s: %s carries no run id (written by an older version or a tool): this run goes on as "
                    "run '%s'; checkpoints without a run id are never pruned\n", c->source, resumed_file, run_id);
}
