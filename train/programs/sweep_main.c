/* train/programs/sweep_main.c — jit-sweep: run a sweep of jit-train runs (e.g. SLA2
 * sparsity against quality) from one small YAML file; docs/sweeps.md.
 *
 *   jit-sweep plan    SWEEP                 the runs and their overrides, each configuration checked
 *   jit-sweep run     SWEEP [--index I] [--launcher "mpirun -np 2"] [--bin DIR] [--keep-going]
 *   jit-sweep slurm   SWEEP [--sbatch-args "..."] [--submit]
 *   jit-sweep summary SWEEP                 OUT_DIR/summary.md, .csv, .svg
 *
 * `run` starts each run as
 *   [LAUNCHER...] jit-train --config BASE --set ... --set run.name=N --set run.out_dir=OUT_DIR/N --resume auto
 * and, when the sweep has an eval: section, then
 *   jit-eval --checkpoint OUT_DIR/N/ckpt --classifier ... --real ... --out OUT_DIR/N/eval.json
 * (the summary's quality axis; a finished run that already has eval.json is not evaluated again),
 * and, with a fid: section,
 *   [LAUNCHER...] jit-eval fid --checkpoint OUT_DIR/N/ckpt --features ... --json OUT_DIR/N/fid.json
 *                 --md OUT_DIR/N/fid.md --state OUT_DIR/N/fid.state
 * (on the launcher's ranks, resumable; skipped when fid.json exists and the run was not trained now);
 * skips runs that finished, stops at the first failure (naming the run and
 * passing its exit code on), and passes exit code 75 (preempted, checkpoint
 * written) straight through so that a SLURM array task is requeued. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "train/config/config.h"
#include "train/sweep/sweep.h"
#include "train/sweep/sweep_metrics.h"
#include "train/sweep/sweep_summary.h"

#define EXIT_REQUEUE 75 /* jit-train's exit code after a checkpoint on SIGTERM/SIGUSR1 */
#define SBATCH_SCRIPT "slurm/sweep.sbatch"

static void usage(void) {
    fprintf(stderr,
            "usage: jit-sweep COMMAND SWEEP_FILE [options]\n"
            "  plan     list the runs with their overrides and check each run's configuration\n"
            "  run      [--index I] [--launcher \"mpirun -np 2 ...\"] [--bin DIR] [--keep-going]\n"
            "           run run I, or every run in order; finished runs are skipped, stopped ones resumed;\n"
            "           with an eval: section, each run is then evaluated by jit-eval (OUT_DIR/<run>/eval.json),\n"
            "           with a fid: section by jit-eval fid on the launcher's ranks (OUT_DIR/<run>/fid.json, fid.md)\n"
            "  slurm    [--sbatch-args \"...\"] [--submit]\n"
            "           print (or submit) sbatch --array=0-(N-1) ... " SBATCH_SCRIPT " SWEEP_FILE\n"
            "  summary  write OUT_DIR/summary.md, summary.csv and summary.svg and print the table\n"
            "see docs/sweeps.md\n");
    exit(2);
}

/* --- command lines --- */

typedef struct Args {
    int n, cap;
    char **v; /* NULL-terminated */
} Args;

static void args_add(Args *a, const char *s) {
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = core_realloc(a->v, sizeof(char *) * (size_t)a->cap);
    }
    a->v[a->n++] = sweep_strdup(s);
    a->v[a->n] = NULL;
}

/* Words of a launcher or sbatch-args string, split on spaces and tabs (no
 * shell quoting: a value with spaces belongs in the sbatch script instead). */
static void args_add_words(Args *a, const char *s) {
    char word[1024];
    while (*s) {
        while (*s == ' ' || *s == '\t') s++;
        size_t k = 0;
        while (*s && *s != ' ' && *s != '\t') {
            if (k + 1 < sizeof word) word[k++] = *s;
            s++;
        }
        word[k] = '\0';
        if (k) args_add(a, word);
    }
}

static void args_free(Args *a) {
    for (int i = 0; i < a->n; i++) core_free(a->v[i]);
    core_free(a->v);
    memset(a, 0, sizeof *a);
}

/* One word as the shell would need it: bare when safe, else in single quotes. */
static void print_shell_word(FILE *f, const char *s) {
    int bare = *s != '\0';
    for (const char *c = s; *c && bare; c++) bare = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                           "0123456789_./=,:+-@%", *c) != NULL;
    if (bare) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (const char *c = s; *c; c++) {
        if (*c == '\'') fputs("'\\''", f);
        else fputc(*c, f);
    }
    fputc('\'', f);
}

static void print_command(FILE *f, const Args *a) {
    for (int i = 0; i < a->n; i++) {
        if (i) fputc(' ', f);
        print_shell_word(f, a->v[i]);
    }
    fputc('\n', f);
}

/* --- options --- */

typedef struct Options {
    const char *sweep_file;
    int index;                 /* -1: every run */
    const char *launcher, *bin, *sbatch_args;
    int keep_going, submit;
} Options;

static long parse_index(const char *s) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT_MAX) {
        fprintf(stderr, "jit-sweep: --index expects a run index (0, 1, ...), got '%s'\n", s);
        exit(2);
    }
    return v;
}

static Options parse_options(const char *command, int argc, char **argv) {
    Options o = {.index = -1};
    int is_run = !strcmp(command, "run"), is_slurm = !strcmp(command, "slurm");
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (is_run && !strcmp(a, "--index") && next) o.index = (int)parse_index(argv[++i]);
        else if (is_run && !strcmp(a, "--launcher") && next) o.launcher = argv[++i];
        else if (is_run && !strcmp(a, "--bin") && next) o.bin = argv[++i];
        else if (is_run && !strcmp(a, "--keep-going")) o.keep_going = 1;
        else if (is_slurm && !strcmp(a, "--sbatch-args") && next) o.sbatch_args = argv[++i];
        else if (is_slurm && !strcmp(a, "--submit")) o.submit = 1;
        else if (a[0] != '-' && !o.sweep_file) o.sweep_file = a;
        else {
            fprintf(stderr, "jit-sweep %s: unknown or incomplete option '%s'\n", command, a);
            usage();
        }
    }
    if (!o.sweep_file) usage();
    return o;
}

/* --- running child processes --- */

static volatile sig_atomic_t child_pid;      /* the jit-train (or launcher) now running; 0 between runs */
static volatile sig_atomic_t pending_signal; /* SIGTERM/SIGUSR1 received */

/* SLURM may signal only the batch script's process: pass the signal on, so
 * that jit-train checkpoints and exits 75 instead of being killed. */
static void on_signal(int sig) {
    pending_signal = sig;
    if (child_pid > 0) kill((pid_t)child_pid, sig);
}

static void install_signal_forwarding(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

/* Run argv and wait: its exit code, 128 + N when killed by signal N, 127
 * when it cannot be started. */
static int run_child(const Args *a) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "jit-sweep: fork: %s\n", strerror(errno));
        return 127;
    }
    if (pid == 0) { /* exec resets our handlers: the child handles its own signals */
        execvp(a->v[0], a->v);
        fprintf(stderr, "jit-sweep: cannot run %s: %s\n", a->v[0], strerror(errno));
        _exit(127);
    }
    child_pid = pid;
    /* A signal that came between fork and here was not forwarded yet. */
    if (pending_signal) kill(pid, pending_signal);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "jit-sweep: waitpid: %s\n", strerror(errno));
            status = 127 << 8;
            break;
        }
    child_pid = 0;
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* jit-train: DIR/jit-train with --bin; else the one beside jit-sweep (the
 * build directory); else whatever PATH finds. */
static void train_binary(const char *bin_dir, char *out, size_t len) {
    if (bin_dir) {
        snprintf(out, len, "%s/jit-train", bin_dir);
        if (access(out, X_OK) != 0) {
            fprintf(stderr, "jit-sweep: --bin %s: no executable %s: %s\n", bin_dir, out, strerror(errno));
            exit(2);
        }
        return;
    }
    char self[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k > 0) {
        self[k] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(out, len, "%s/jit-train", self);
            if (access(out, X_OK) == 0) return;
        }
    }
    snprintf(out, len, "jit-train");
}

/* --- the commands --- */

/* Load run i's configuration exactly as jit-train will: 0, or -1 with the
 * loader's message (FILE:LINE:COL: KEY: problem, or override '...': ...). */
static int check_run_config(const Sweep *s, int i, Config *cfg, char *err, size_t errlen) {
    char **ov;
    int n = sweep_run_overrides(s, i, &ov);
    int rc = config_try_load(cfg, s->base, n, ov, err, errlen);
    sweep_free_overrides(ov, n);
    return rc;
}

static void train_command(const Sweep *s, int i, const Options *o, const char *train_bin, Args *a) {
    memset(a, 0, sizeof *a);
    if (o && o->launcher) args_add_words(a, o->launcher);
    args_add(a, train_bin);
    args_add(a, "--config");
    args_add(a, s->base);
    char **ov;
    int n = sweep_run_overrides(s, i, &ov);
    for (int k = 0; k < n; k++) args_add(a, "--set"), args_add(a, ov[k]);
    sweep_free_overrides(ov, n);
    args_add(a, "--resume");
    args_add(a, "auto");
}

/* jit-eval from the same build as jit-train (same folder), else PATH's. */
static void eval_binary(const char *train_bin, char *out, size_t len) {
    const char *slash = strrchr(train_bin, '/');
    if (slash) snprintf(out, len, "%.*s/jit-eval", (int)(slash - train_bin), train_bin);
    else snprintf(out, len, "jit-eval");
}

/* jit-eval runs on one process: sampling a few hundred images does not need
 * the launcher's ranks. */
static void eval_command(const Sweep *s, int i, const Options *o, const char *eval_bin, Args *a) {
    (void)o; /* one process: no launcher */
    char dir[1024], path[1100];
    sweep_run_dir(s, i, dir, sizeof dir);
    memset(a, 0, sizeof *a);
    args_add(a, eval_bin);
    snprintf(path, sizeof path, "%s/ckpt", dir);
    args_add(a, "--checkpoint");
    args_add(a, path);
    for (int k = 0; k < s->eval.n_args; k++) args_add(a, s->eval.args[k]);
    snprintf(path, sizeof path, "%s/eval.json", dir);
    args_add(a, "--out");
    args_add(a, path);
}

/* jit-eval fid on the launcher's ranks (it splits the images across them). */
static void fid_command(const Sweep *s, int i, const Options *o, const char *eval_bin, Args *a) {
    char dir[1024], path[1100];
    sweep_run_dir(s, i, dir, sizeof dir);
    memset(a, 0, sizeof *a);
    if (o && o->launcher) args_add_words(a, o->launcher);
    args_add(a, eval_bin);
    args_add(a, "fid");
    snprintf(path, sizeof path, "%s/ckpt", dir);
    args_add(a, "--checkpoint"), args_add(a, path);
    for (int k = 0; k < s->fid.n_args; k++) args_add(a, s->fid.args[k]);
    const char *outs[3][2] = {{"--json", "fid.json"}, {"--md", "fid.md"}, {"--state", "fid.state"}};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, outs[k][1]);
        args_add(a, outs[k][0]), args_add(a, path);
    }
}

static const char *state_words(RunState st) {
    static const char *const w[] = {"not started", "started", "preempted (resumes)", "finished"};
    return w[st];
}

static int cmd_plan(const Sweep *s) {
    Config *cfg = core_malloc(sizeof *cfg);
    int bad = 0;
    printf("sweep '%s': %d run%s of %s into %s\n", s->name, s->n_runs, s->n_runs == 1 ? "" : "s", s->base, s->out_dir);
    for (int i = 0; i < s->n_runs; i++) {
        char dir[1024];
        long end;
        sweep_run_dir(s, i, dir, sizeof dir);
        RunState st = sweep_run_state(dir, &end);
        char err[2048];
        int ok = check_run_config(s, i, cfg, err, sizeof err) == 0;
        printf("[%d] %s", i, s->runs[i].name);
        if (ok && st == RUN_DONE && end < cfg->steps)
            printf("  (%d steps; finished at step %ld: run continues it)\n", cfg->steps, end);
        else if (ok) printf("  (%d steps; %s)\n", cfg->steps, state_words(st));
        else printf("  (INVALID)\n");
        Args a;
        train_command(s, i, NULL, "jit-train", &a);
        printf("    ");
        print_command(stdout, &a);
        args_free(&a);
        if (s->eval.enabled) {
            eval_command(s, i, NULL, "jit-eval", &a);
            printf("    then ");
            print_command(stdout, &a);
            args_free(&a);
        }
        if (s->fid.enabled) {
            fid_command(s, i, NULL, "jit-eval", &a);
            printf("    then ");
            print_command(stdout, &a);
            args_free(&a);
        }
        /* The first error of each run, under it, with its name. */
        if (!ok) printf("    error in run %d '%s': %s\n", i, s->runs[i].name, err);
        bad += !ok;
    }
    core_free(cfg);
    fflush(stdout);
    if (bad) fprintf(stderr, "jit-sweep: %s: %d of %d runs have an invalid configuration (errors above)\n", s->path,
                     bad, s->n_runs);
    else printf("all %d configurations are valid\n", s->n_runs);
    return bad ? 1 : 0;
}

/* One evaluation of run i (jit-eval, or jit-eval fid: `make` builds its
 * command) unless the run was not trained now and already has OUT_DIR/<run>/
 * `done`. Returns the command's exit code (0 for skipped). */
typedef void (*EvalCommandFn)(const Sweep *s, int i, const Options *o, const char *eval_bin, Args *a);
static int evaluate_with(const Sweep *s, int i, const Options *o, const char *train_bin, int trained_now,
                         const char *done, const char *what, EvalCommandFn make) {
    char dir[1024], path[1100], eval_bin[PATH_MAX + 16];
    sweep_run_dir(s, i, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s", dir, done);
    if (!trained_now && access(path, R_OK) == 0) {
        printf("jit-sweep: [%d/%d] %s: %s exists, not evaluated again\n", i, s->n_runs, s->runs[i].name, path);
        return 0;
    }
    eval_binary(train_bin, eval_bin, sizeof eval_bin);
    Args a;
    make(s, i, o, eval_bin, &a);
    printf("jit-sweep: [%d/%d] %s: ", i, s->n_runs, s->runs[i].name);
    print_command(stdout, &a);
    int code = run_child(&a);
    args_free(&a);
    if (code != 0)
        fprintf(stderr, "jit-sweep: run %d '%s': %s failed with exit code %d (its output is above); the "
                        "training run is finished, the same command evaluates it again%s\n", i, s->runs[i].name, what,
                code, make == fid_command ? " (continuing from its state)" : "");
    return code;
}

/* Both evaluations the sweep asks for, in order. */
static int evaluate_run(const Sweep *s, int i, const Options *o, const char *train_bin, int trained_now) {
    int code = s->eval.enabled ? evaluate_with(s, i, o, train_bin, trained_now, "eval.json", "jit-eval", eval_command) : 0;
    if (code == 0 && s->fid.enabled)
        code = evaluate_with(s, i, o, train_bin, trained_now, "fid.json", "jit-eval fid", fid_command);
    return code;
}

/* Run one run unless it has finished, then evaluate it when the sweep says
 * so. Returns the first nonzero exit code (0 for skipped). */
static int run_one(const Sweep *s, int i, const Options *o, const char *train_bin, Config *cfg) {
    const char *name = s->runs[i].name;
    char err[2048];
    if (check_run_config(s, i, cfg, err, sizeof err)) {
        fflush(stdout);
        fprintf(stderr, "jit-sweep: run %d '%s': %s\n", i, name, err);
        return 1;
    }
    char dir[1024];
    long end;
    sweep_run_dir(s, i, dir, sizeof dir);
    /* Finished means a train_end at the configured length: a sweep file
     * asking for more steps later resumes the run instead of skipping it. */
    if (sweep_run_state(dir, &end) == RUN_DONE && end >= cfg->steps) {
        printf("jit-sweep: [%d/%d] %s: finished (train_end at step %ld), skipped\n", i, s->n_runs, name, end);
        return evaluate_run(s, i, o, train_bin, 0);
    }
    Args a;
    train_command(s, i, o, train_bin, &a);
    printf("jit-sweep: [%d/%d] %s: ", i, s->n_runs, name);
    print_command(stdout, &a);
    int code = run_child(&a);
    args_free(&a);
    if (code == EXIT_REQUEUE)
        fprintf(stderr, "jit-sweep: run %d '%s' was preempted (exit %d): its checkpoint is written; the same "
                        "command resumes it\n", i, name, code);
    else if (code != 0)
        fprintf(stderr, "jit-sweep: run %d '%s' failed with exit code %d (its output is above; run directory %s)\n",
                i, name, code, dir);
    if (code == 0) code = evaluate_run(s, i, o, train_bin, 1);
    return code;
}

static int cmd_run(const Sweep *s, const Options *o) {
    if (o->index >= s->n_runs) {
        fprintf(stderr, "jit-sweep: %s: --index %d: the sweep has %d runs (0 to %d)\n", s->path, o->index, s->n_runs,
                s->n_runs - 1);
        return 2;
    }
    char train_bin[PATH_MAX + 16];
    train_binary(o->bin, train_bin, sizeof train_bin);
    install_signal_forwarding();
    Config *cfg = core_malloc(sizeof *cfg);
    int first = o->index >= 0 ? o->index : 0, last = o->index >= 0 ? o->index : s->n_runs - 1;
    int failed = 0, last_code = 0;
    for (int i = first; i <= last; i++) {
        if (pending_signal) { /* told to stop between runs: ask to be requeued */
            fprintf(stderr, "jit-sweep: received signal %d: stopping before run %d\n", (int)pending_signal, i);
            last_code = EXIT_REQUEUE;
            break;
        }
        int code = run_one(s, i, o, train_bin, cfg);
        if (code == 0) continue;
        failed++, last_code = code;
        if (code == EXIT_REQUEUE || !o->keep_going) break;
    }
    core_free(cfg);
    if (failed > 1) fprintf(stderr, "jit-sweep: %d runs failed\n", failed);
    return last_code;
}

static int cmd_slurm(const Sweep *s, const Options *o) {
    Args a = {0};
    char array[64];
    snprintf(array, sizeof array, "--array=0-%d", s->n_runs - 1);
    args_add(&a, "sbatch");
    args_add(&a, array);
    if (o->sbatch_args) args_add_words(&a, o->sbatch_args);
    args_add(&a, SBATCH_SCRIPT);
    args_add(&a, o->sweep_file);
    print_command(stdout, &a);
    int code = 0;
    if (access(SBATCH_SCRIPT, R_OK) != 0) {
        fprintf(stderr, "jit-sweep: %s not found from %s: run this from the repository root\n", SBATCH_SCRIPT,
                getcwd(array, sizeof array) ? array : ".");
        code = o->submit ? 1 : 0;
    } else if (o->submit) {
        code = run_child(&a);
        if (code) fprintf(stderr, "jit-sweep: sbatch failed with exit code %d\n", code);
    }
    args_free(&a);
    return code;
}

static int cmd_summary(const Sweep *s) {
    char err[2048];
    if (sweep_summary(s, stdout, err, sizeof err)) {
        fprintf(stderr, "jit-sweep: %s\n", err);
        return 1;
    }
    printf("wrote %s/summary.md, summary.csv, summary.svg\n", s->out_dir);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) usage();
    const char *command = argv[1];
    if (strcmp(command, "plan") && strcmp(command, "run") && strcmp(command, "slurm") && strcmp(command, "summary")) {
        fprintf(stderr, "jit-sweep: unknown command '%s'\n", command);
        usage();
    }
    Options o = parse_options(command, argc, argv);
    Sweep s;
    char err[2048];
    if (sweep_load(&s, o.sweep_file, err, sizeof err)) {
        fprintf(stderr, "jit-sweep: %s\n", err);
        return 1;
    }
    int code = !strcmp(command, "plan")    ? cmd_plan(&s)
               : !strcmp(command, "run")   ? cmd_run(&s, &o)
               : !strcmp(command, "slurm") ? cmd_slurm(&s, &o)
                                           : cmd_summary(&s);
    sweep_free(&s);
    return code;
}
