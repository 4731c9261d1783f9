/* train/programs/train_main.c — jit-train: train JiT or JiT-SLA2 from a YAML config.
 *
 *   jit-train --config configs/fmnist-tiny.yaml [--set key.path=value ...]
 *             [--resume auto|CHECKPOINT] [--overwrite]
 *       --overwrite: start afresh in a run.out_dir that holds another run's
 *       checkpoints, deleting them (without it, such a start is refused:
 *       train/run_dir.h)
 *   jit-train --resume CHECKPOINT [--set key.path=value ...]
 *       continue a run with the configuration the checkpoint holds (every
 *       checkpoint saves its resolved configuration; --set still overrides)
 *   mpirun -np 4 jit-train --config ...     (data parallel: one rank per process)
 *   jit-train --config FILE [--set ...] --print-config | --print-params
 *       print the resolved configuration (YAML), or the model's parameters
 *       (one line each: name, shape as d0xd1..., 1 when AdamW decays it
 *       under this configuration, else 0) and exit without training; the
 *       checkpoint tools (scripts/jit_interop.py) take both from here so
 *       they never restate the model's layout. --resume CHECKPOINT in
 *       place of --config prints the checkpoint's.
 *   jit-train --config FILE [--set ...] --plan [--ranks N]
 *       print the memory plan (train/mem_plan.h): the bytes per rank by
 *       category, for each train.recompute level, counted by running the
 *       allocating code on counted memory for run.device (a GPU plan needs
 *       a CUDA build, not a GPU), and exit without training
 *
 * Writes into run.out_dir: config.yaml (resolved), metrics.jsonl (one JSON
 * object per step), ckpt/ (HDF5 checkpoints, "latest"), samples/ (PNG grids
 * and HDF5 samples). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "dist/comm.h"
#include "io/ckpt.h"
#include "kernels/cpu/blas_select.h"
#include "train/config/config.h"
#include "train/mem_plan.h"
#include "train/model/jit.h"
#include "train/trainer.h"

static void usage(void) {
    fprintf(stderr, "usage: jit-train --config FILE [--set key.path=value]... [--resume auto|CHECKPOINT] [--overwrite]\n"
                    "       jit-train --resume CHECKPOINT [--set key.path=value]...   (the checkpoint's own configuration)\n"
                    "       jit-train --config FILE|--resume CHECKPOINT [--set key.path=value]... --print-config | --print-params\n"
                    "       jit-train --config FILE|--resume CHECKPOINT [--set key.path=value]... --plan [--ranks N]   (memory per rank)\n"
                    "  CHECKPOINT: a ckpt-*.h5 file or a checkpoint directory (its 'latest')\n"
                    "  e.g. jit-train --config configs/fmnist-tiny.yaml --set optim.lr=1e-4 --set train.steps=200\n");
    exit(2);
}

/* `--resume CHECKPOINT` without --config: the configuration the checkpoint
 * saved (jit-train and scripts/jit_interop.py write the resolved YAML into
 * every checkpoint), so continuing a run needs nothing but the checkpoint;
 * --set overrides apply on top, as to a file. "auto" means the checkpoint
 * directory under the configuration's run.out_dir, which only a
 * configuration can name. Messages then name the checkpoint file. */
static void train_config_from_checkpoint(Config *cfg, const char *resume, int n_over, char **overrides, int verbose) {
    if (!strcmp(resume, "auto")) {
        fprintf(stderr, "jit-train: --resume auto looks in the configuration's run.out_dir/ckpt: pass --config FILE, "
                        "or --resume a checkpoint file or directory to continue with its own configuration\n");
        exit(2);
    }
    char path[1100];
    ckpt_resolve(resume, path, sizeof path);
    char *yaml = ckpt_read_config(path);
    CHECK(yaml != NULL,
          "jit-train --resume %s: %s holds no saved configuration (not written by jit-train or jit_interop.py?): "
          "pass --config FILE with the run's configuration",
          resume, path);
    config_load_string(cfg, path, yaml, n_over, overrides);
    free(yaml);
    if (verbose) {
        printf("jit-train: the configuration saved in %s (run.out_dir: %s)\n", path, cfg->out_dir);
        fflush(stdout); /* before the trainer's notices on stderr */
    }
}

/* The parameter list as the trainer registers it, decay set included. */
static void train_print_params(const Config *cfg) {
    JitModel m;
    jit_build(&m, &cfg->model, 0);
    if (cfg->official_decay_set) jit_use_official_decay_set(&m);
    for (int i = 0; i < m.params.n; i++) {
        const ParamInfo *p = &m.params.info[i];
        printf("%s\t", p->name);
        for (int k = 0; k < p->ndim; k++) printf(k ? "x%d" : "%d", p->shape[k]);
        printf("\t%d\n", p->weight_decay ? 1 : 0);
    }
    jit_free(&m);
}

int main(int argc, char **argv) {
    blas_select(argv, 0); /* first: it may start the program again (blas_select.h) */
    const char *config = NULL, *resume = NULL;
    int print_config = 0, print_params = 0, print_blas = 0, overwrite = 0, plan = 0, ranks = 1;
    char **overrides = calloc((size_t)argc, sizeof(char *));
    int n_over = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) config = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) overrides[n_over++] = argv[++i];
        else if (!strcmp(argv[i], "--resume") && i + 1 < argc) resume = argv[++i];
        else if (!strcmp(argv[i], "--overwrite")) overwrite = 1;
        else if (!strcmp(argv[i], "--print-config")) print_config = 1;
        else if (!strcmp(argv[i], "--print-params")) print_params = 1;
        else if (!strcmp(argv[i], "--print-blas")) print_blas = 1;
        else if (!strcmp(argv[i], "--plan")) plan = 1;
        else if (!strcmp(argv[i], "--ranks") && i + 1 < argc) {
            char *end;
            long r = strtol(argv[++i], &end, 10);
            if (*end || r < 1 || r > 1000000) {
                fprintf(stderr, "jit-train: --ranks %s: expected a rank count >= 1\n", argv[i]);
                exit(2);
            }
            ranks = (int)r;
        }
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) usage();
        else {
            fprintf(stderr, "jit-train: unknown argument '%s'\n", argv[i]);
            usage();
        }
    }
    if (print_blas) {
        char line[400];
        puts(blas_select_describe(line, sizeof line));
        free(overrides);
        return 0;
    }
    if (!config && !resume) {
        fprintf(stderr, "jit-train: no configuration: pass --config FILE, or --resume CHECKPOINT to continue a run "
                        "with the configuration its checkpoint holds\n");
        usage();
    }
    if (overwrite && resume && !strcmp(resume, "auto")) {
        fprintf(stderr, "jit-train: --overwrite starts over and --resume auto continues: give one of them\n");
        exit(2);
    }
    if (print_config || print_params || plan) {
        Config cfg;
        if (config) config_load(&cfg, config, n_over, overrides);
        else train_config_from_checkpoint(&cfg, resume, n_over, overrides, 0);
        if (print_config) config_write(&cfg, stdout);
        if (print_params) train_print_params(&cfg);
        if (plan) {
            MemPlan mp;
            mem_plan_compute(&cfg, ranks, &mp);
            mem_plan_print(stdout, &cfg, &mp);
        }
        free(overrides);
        return 0;
    }
    Comm comm;
    comm_init(&comm, &argc, &argv);
    if (comm.rank == 0) {
        char line[400];
        fprintf(stderr, "%s\n", blas_select_describe(line, sizeof line));
    }
    trainer_install_signal_handlers();
    Config cfg;
    if (config) config_load(&cfg, config, n_over, overrides);
    else train_config_from_checkpoint(&cfg, resume, n_over, overrides, comm.rank == 0);
    cfg.overwrite = overwrite;
    Trainer T;
    trainer_init(&T, &cfg, resume, &comm);
    int code = trainer_run(&T);
    trainer_free(&T);
    free(overrides);
    comm_finalize(&comm);
    return code;
}
