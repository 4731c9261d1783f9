/* train/train_main.c — jit-train: train JiT or JiT-SLA2 from a YAML config.
 *
 *   jit-train --config configs/fmnist-tiny.yaml [--set key.path=value ...]
 *             [--resume auto|CHECKPOINT]
 *   mpirun -np 4 jit-train --config ...     (data parallel: one rank per process)
 *
 * Writes into run.out_dir: config.yaml (resolved), metrics.jsonl (one JSON
 * object per step), ckpt/ (HDF5 checkpoints, "latest"), samples/ (PNG grids
 * and HDF5 samples). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "dist/comm.h"
#include "io/config.h"
#include "train/trainer.h"

static void usage(void) {
    fprintf(stderr, "usage: jit-train --config FILE [--set key.path=value]... [--resume auto|CHECKPOINT]\n"
                    "  e.g. jit-train --config configs/fmnist-tiny.yaml --set optim.lr=1e-4 --set train.steps=200\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *config = NULL, *resume = NULL;
    char **overrides = calloc((size_t)argc, sizeof(char *));
    int n_over = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) config = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) overrides[n_over++] = argv[++i];
        else if (!strcmp(argv[i], "--resume") && i + 1 < argc) resume = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) usage();
        else {
            fprintf(stderr, "jit-train: unknown argument '%s'\n", argv[i]);
            usage();
        }
    }
    if (!config) usage();
    Comm comm;
    comm_init(&comm, &argc, &argv);
    trainer_install_signal_handlers();
    Config cfg;
    config_load(&cfg, config, n_over, overrides);
    Trainer T;
    trainer_init(&T, &cfg, resume, &comm);
    int code = trainer_run(&T);
    trainer_free(&T);
    free(overrides);
    comm_finalize(&comm);
    return code;
}
