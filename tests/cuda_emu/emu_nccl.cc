/* tests/cuda_emu/emu_nccl.cc — NCCL for the emulator, over MPI: a
 * communicator is an MPI communicator split off MPI_COMM_WORLD by the unique
 * id (so every rank of the world must take part, as every rank of this
 * project's jobs does), and an all-reduce runs the stream's queued work,
 * then MPI_Allreduce in place. Running it when it is called rather than when
 * the stream reaches it keeps two ranks from waiting on each other through
 * unrelated host calls; the result is the same, since its stream's earlier
 * work runs first and later work is queued behind it. */
#define OMPI_SKIP_MPICXX 1 /* the C API only: no Open MPI C++ bindings to link */
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <unistd.h>

#include <random>

#include "emu_internal.h"
#include "include/nccl.h"

struct EmuNcclComm {
    MPI_Comm mpi;
    int rank, nranks;
};

extern "C" {

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    memset(id, 0, sizeof *id);
    std::random_device rd;
    unsigned v = rd() ^ (unsigned)getpid();
    memcpy(id->internal, &v, sizeof v);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
        fprintf(stderr, "EMU NCCL: ncclCommInitRank needs MPI initialised (the emulated NCCL runs over MPI)\n");
        return ncclInvalidUsage;
    }
    unsigned color;
    memcpy(&color, id.internal, sizeof color);
    MPI_Comm c;
    if (MPI_Comm_split(MPI_COMM_WORLD, (int)(color & 0x7fffffff), rank, &c) != MPI_SUCCESS) return ncclSystemError;
    int size = 0, r = 0;
    MPI_Comm_size(c, &size);
    MPI_Comm_rank(c, &r);
    if (size != nranks || r != rank) {
        fprintf(stderr, "EMU NCCL: ncclCommInitRank(nranks %d, rank %d) but %d ranks joined (rank %d)\n", nranks, rank,
                size, r);
        MPI_Comm_free(&c);
        return ncclInvalidUsage;
    }
    *comm = new EmuNcclComm{c, rank, nranks};
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    if (!comm) return ncclInvalidArgument;
    if (type != ncclFloat32) {
        fprintf(stderr, "EMU NCCL: data type %d is not emulated (ncclFloat32 is)\n", (int)type);
        return ncclInvalidArgument;
    }
    if (count == 0) return ncclSuccess;
    if (!emu_device_range(send, count * 4) || !emu_device_range(recv, count * 4))
        emu_fail("ncclAllReduce(%p -> %p, %zu floats): a buffer is not inside one device allocation", send, recv,
                 count);
    MPI_Op mop = op == ncclMax ? MPI_MAX : op == ncclMin ? MPI_MIN : op == ncclProd ? MPI_PROD : MPI_SUM;
    emu_stream_flush(stream);
    if (count > (size_t)INT32_MAX) return ncclInvalidArgument;
    int rc = send == recv ? MPI_Allreduce(MPI_IN_PLACE, recv, (int)count, MPI_FLOAT, mop, comm->mpi)
                          : MPI_Allreduce(send, recv, (int)count, MPI_FLOAT, mop, comm->mpi);
    if (rc != MPI_SUCCESS) return ncclSystemError;
    if (op == ncclAvg) {
        float *r = (float *)recv;
        for (size_t i = 0; i < count; i++) r[i] /= (float)comm->nranks;
    }
    return ncclSuccess;
}

/* Reduce onto root (MPI_Reduce; the others' recv is not written). */
ncclResult_t ncclReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op, int root,
                        ncclComm_t comm, cudaStream_t stream) {
    if (!comm || root < 0 || root >= comm->nranks) return ncclInvalidArgument;
    if (type != ncclFloat32) {
        fprintf(stderr, "EMU NCCL: data type %d is not emulated (ncclFloat32 is)\n", (int)type);
        return ncclInvalidArgument;
    }
    if (count == 0) return ncclSuccess;
    if (!emu_device_range(send, count * 4) || (comm->rank == root && !emu_device_range(recv, count * 4)))
        emu_fail("ncclReduce(%p -> %p, %zu floats): a buffer is not inside one device allocation", send, recv, count);
    if (count > (size_t)INT32_MAX) return ncclInvalidArgument;
    MPI_Op mop = op == ncclMax ? MPI_MAX : op == ncclMin ? MPI_MIN : op == ncclProd ? MPI_PROD : MPI_SUM;
    emu_stream_flush(stream);
    int rc;
    if (comm->rank == root)
        rc = send == recv ? MPI_Reduce(MPI_IN_PLACE, recv, (int)count, MPI_FLOAT, mop, root, comm->mpi)
                          : MPI_Reduce(send, recv, (int)count, MPI_FLOAT, mop, root, comm->mpi);
    else
        rc = MPI_Reduce(send, NULL, (int)count, MPI_FLOAT, mop, root, comm->mpi);
    if (rc != MPI_SUCCESS) return ncclSystemError;
    if (op == ncclAvg && comm->rank == root) {
        float *r = (float *)recv;
        for (size_t i = 0; i < count; i++) r[i] /= (float)comm->nranks;
    }
    return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t type, int root, ncclComm_t comm,
                           cudaStream_t stream) {
    if (!comm || root < 0 || root >= comm->nranks) return ncclInvalidArgument;
    if (type != ncclFloat32) {
        fprintf(stderr, "EMU NCCL: data type %d is not emulated (ncclFloat32 is)\n", (int)type);
        return ncclInvalidArgument;
    }
    if (count == 0) return ncclSuccess;
    if (!emu_device_range(recv, count * 4) || (comm->rank == root && !emu_device_range(send, count * 4)))
        emu_fail("ncclBroadcast(%p -> %p, %zu floats): a buffer is not inside one device allocation", send, recv,
                 count);
    if (count > (size_t)INT32_MAX) return ncclInvalidArgument;
    emu_stream_flush(stream);
    if (comm->rank == root && send != recv) memcpy(recv, send, count * 4);
    return MPI_Bcast(recv, (int)count, MPI_FLOAT, root, comm->mpi) == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}

/* Every call runs when it is made, in the same order on every rank: a
 * group (several roots at once) needs nothing more. */
ncclResult_t ncclGroupStart(void) { return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) { return ncclSuccess; }

ncclResult_t ncclCommAbort(ncclComm_t comm) {
    delete comm; /* the MPI communicator is left to MPI_Abort / MPI_Finalize */
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    if (!comm) return ncclInvalidArgument;
    MPI_Comm_free(&comm->mpi);
    delete comm;
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r) {
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    }
    return "unknown result";
}

} /* extern "C" */
