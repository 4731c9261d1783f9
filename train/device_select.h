/* train/device_select.h — open the compute device a program was asked for
 * by name ("cpu", "cuda": run.device, or a --device option) and give its op
 * table. One device per process: a CUDA process drives the GPU of its local
 * rank index (modulo the GPUs it sees, which is 1 under srun's per-task
 * binding) and sets the matrix-product precision process-wide. */
#ifndef TRAIN_DEVICE_SELECT_H
#define TRAIN_DEVICE_SELECT_H

#include "core/tensor.h"
#include "train/config/config.h"
#include "kernels/ops.h"

typedef struct DeviceChoice {
    Device device;
    const OpTable *ops;
    int gpu; /* the CUDA device driven; -1 on the CPU */
} DeviceChoice;

/* name: "cpu" or "cuda" (anything else stops); precision: run.precision
 * (auto is bf16 on cuda); local_rank: this process's index among the
 * ranks of its node (0 without MPI). `who` starts every message (a config
 * file, a program name). Stops with a message when cuda is asked for and
 * the build or the machine has none. */
DeviceChoice device_select(const char *name, RunPrecision precision, int local_rank, const char *who);
/* "cpu", or "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB), bf16 matrix products". */
const char *device_describe(const DeviceChoice *d, char *buf, size_t len);

#endif
