/* train/programs/eval_main.c — jit-eval: sample quality of a checkpoint measured with
 * the evaluation classifier (train/eval/evaluate.h, docs/eval.md).
 *
 *   jit-eval --checkpoint CKPT --classifier FILE --real DIR [--per-class N] [--steps S] [--cfg W]
 *            [--interval LO,HI] [--ema K|-1] [--seed S] [--batch B] [--out eval.json] [--samples-h5 FILE] [--png GRID]
 *            [--device cpu|cuda] [--precision auto|fp32|bf16]
 *
 * Sampler settings default to the checkpoint's configuration (sampling:),
 * the EMA copy to 0, the seed to run.seed, per-class to 100. The JSON holds
 * "frechet_distance" and "conditional_accuracy" (what jit-sweep's summary
 * reads from OUT_DIR/<run>/eval.json), the real-data floor, per-class
 * accuracies and the settings. --device cuda samples on GPU 0 (the
 * classifier stays on the CPU).
 *
 * jit-eval fid / fid-ref / fid-features: FID and IS as torch-fidelity
 * computes them, on any number of ranks (eval_fid_main.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "kernels/cpu/blas_select.h"
#include "train/eval/evaluate.h"

int eval_fid_main(int argc, char **argv);

static _Noreturn void usage(const char *why) {
    if (why) fprintf(stderr, "jit-eval: %s\n", why);
    fprintf(stderr,
            "usage: jit-eval --checkpoint FILE|DIR --classifier FILE --real DIR [--per-class N] [--steps S]\n"
            "                [--cfg W] [--interval LO,HI] [--ema K|-1] [--seed S] [--batch B] [--out eval.json]\n"
            "                [--samples-h5 FILE] [--png GRID] [--device cpu|cuda] [--precision auto|fp32|bf16]\n"
            "                [--quiet]   (--samples-h5, --png: the evaluated samples; GRID has one row per class)\n"
            "       jit-eval fid|fid-ref|fid-features ...   (FID and IS; jit-eval fid without options for its usage)\n");
    exit(2);
}

/* An integer option's value; else `bad` (a usage function: it exits) with the
 * reason. Shared with eval_fid_main.c. */
long eval_parse_long(const char *opt, const char *v, void (*bad)(const char *why));
long eval_parse_long(const char *opt, const char *v, void (*bad)(const char *why)) {
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s wants an integer, got '%s'", opt, v);
        bad(msg);
        exit(2);
    }
    return x;
}

static long parse_int(const char *opt, const char *v) { return eval_parse_long(opt, v, usage); }

static float parse_float(const char *opt, const char *v) {
    char *end;
    float x = strtof(v, &end);
    if (end == v || *end) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s wants a number, got '%s'", opt, v);
        usage(msg);
    }
    return x;
}

int main(int argc, char **argv) {
    blas_select(argv, 1); /* first: it may start the program again (blas_select.h) */
    if (argc > 1 && (!strcmp(argv[1], "fid") || !strcmp(argv[1], "fid-ref") || !strcmp(argv[1], "fid-features") ||
                     !strcmp(argv[1], "fid-stats")))
        return eval_fid_main(argc, argv); /* eval_fid_main.c */
    EvalOptions o;
    eval_options_defaults(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quiet")) {
            o.quiet = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage("missing value");
        if (!strcmp(a, "--checkpoint")) o.checkpoint = v;
        else if (!strcmp(a, "--classifier")) o.classifier = v;
        else if (!strcmp(a, "--real")) o.real = v;
        else if (!strcmp(a, "--per-class")) o.per_class = (int)parse_int(a, v);
        else if (!strcmp(a, "--steps")) o.steps = (int)parse_int(a, v);
        else if (!strcmp(a, "--cfg")) o.cfg = parse_float(a, v);
        else if (!strcmp(a, "--interval")) {
            if (sscanf(v, "%f,%f", &o.cfg_lo, &o.cfg_hi) != 2 || !(o.cfg_lo >= 0 && o.cfg_lo < o.cfg_hi))
                usage("--interval takes LO,HI with 0 <= LO < HI");
        } else if (!strcmp(a, "--ema")) o.ema = (int)parse_int(a, v);
        else if (!strcmp(a, "--seed")) o.seed = parse_int(a, v);
        else if (!strcmp(a, "--batch")) o.batch = (int)parse_int(a, v);
        else if (!strcmp(a, "--out")) o.out = v;
        else if (!strcmp(a, "--samples-h5")) o.samples_h5 = v;
        else if (!strcmp(a, "--png")) o.png = v;
        else if (!strcmp(a, "--device")) o.device = v;
        else if (!strcmp(a, "--precision")) {
            if (!strcmp(v, "auto")) o.precision = PRECISION_AUTO;
            else if (!strcmp(v, "fp32")) o.precision = PRECISION_FP32;
            else if (!strcmp(v, "bf16")) o.precision = PRECISION_BF16;
            else usage("--precision takes auto, fp32 or bf16");
        } else usage("unknown option");
        i++;
    }
    if (!o.checkpoint || !o.classifier || !o.real) usage("--checkpoint, --classifier and --real are required");
    if (o.steps == 0 || o.steps < -1) usage("--steps must be positive");
    if (o.ema < -1 && o.ema != -2) usage("--ema takes an EMA index or -1 (raw weights)");
    eval_run(&o);
    return 0;
}
