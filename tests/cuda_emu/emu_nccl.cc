/* tests/cuda_emu/emu_nccl.cc — NCCL for the emulator, over MPI: a
 * communicator is an MPI communicator split off MPI_COMM_WORLD by the unique
 * id (so every rank of the world must take part, as every rank of this
 * project's jobs does).
 *
 * A collective is ordered on its stream as on a GPU, in two halves. At the
 * call, the emulator runs what the collective is ordered after (its stream's
 * earlier work and the events that stream waits on, nothing else) and the
 * MPI exchange, into a staging buffer; the result is copied into the
 * receive buffer by an operation queued on the stream, so it appears only
 * when the stream gets there, and the race detector sees the collective
 * read its input and write its output at that place in the stream. Running
 * the exchange at the call rather than when the stream reaches it keeps two
 * ranks from waiting on each other through unrelated host calls (a GPU runs
 * the collective without the host); the values are the same, since the
 * input is final once what the collective follows has run. A missing event
 * before a collective shows twice: the exchange reads the input before its
 * producer ran (wrong values on every seed), and the race detector names
 * both operations. */
#define OMPI_SKIP_MPICXX 1 /* the C API only: no Open MPI C++ bindings to link */
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "emu_internal.h"
#include "include/nccl.h"

struct EmuNcclComm {
    MPI_Comm mpi;
    int rank, nranks;
};

/* A collective in its two halves (the header comment): what it follows on
 * its stream runs, exchange() fills a staging buffer of recv_count floats
 * now (false: MPI failed), and an operation queued on the stream reads
 * send_bytes of send and copies the staging buffer into recv. recv_count 0:
 * this rank receives nothing (a reduce's non-root). */
static ncclResult_t collective(cudaStream_t stream, const char *what, const void *send, size_t send_bytes, void *recv,
                               size_t recv_count, const std::function<bool(float *staged)> &exchange) {
    emu_stream_flush(stream);
    auto staged = std::make_shared<std::vector<float>>(recv_count);
    if (!exchange(staged->data())) return ncclSystemError;
    emu_enqueue(stream, what, [send, send_bytes, recv, staged]() {
        size_t bytes = staged->size() * sizeof(float);
        emu_hz_note_range(send, send_bytes, false);
        emu_hz_note_range(recv, bytes, true);
        if (bytes) memcpy(recv, staged->data(), bytes);
    });
    return ncclSuccess;
}

/* What every collective checks first: a communicator, a root among its
 * ranks (-1: the collective has none) and floats. */
static ncclResult_t check_call(ncclComm_t comm, ncclDataType_t type, int root) {
    if (!comm || root < -1 || root >= comm->nranks) return ncclInvalidArgument;
    if (type != ncclFloat32) {
        fprintf(stderr, "EMU NCCL: data type %d is not emulated (ncclFloat32 is)\n", (int)type);
        return ncclInvalidArgument;
    }
    return ncclSuccess;
}

static MPI_Op mpi_op(ncclRedOp_t op) {
    return op == ncclMax ? MPI_MAX : op == ncclMin ? MPI_MIN : op == ncclProd ? MPI_PROD : MPI_SUM; /* avg: sum, scaled */
}

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
    if (ncclResult_t r = check_call(comm, type, -1)) return r;
    if (count == 0) return ncclSuccess;
    if (!emu_device_range(send, count * 4) || !emu_device_range(recv, count * 4))
        emu_fail("ncclAllReduce(%p -> %p, %zu floats): a buffer is not inside one device allocation", send, recv,
                 count);
    MPI_Op mop = mpi_op(op);
    if (count > (size_t)INT32_MAX) return ncclInvalidArgument;
    float scale = op == ncclAvg ? 1.0f / (float)comm->nranks : 1.0f;
    return collective(stream, "ncclAllReduce", send, count * 4, recv, count, [&](float *staged) {
        if (MPI_Allreduce(send, staged, (int)count, MPI_FLOAT, mop, comm->mpi) != MPI_SUCCESS) return false;
        if (scale != 1.0f)
            for (size_t i = 0; i < count; i++) staged[i] *= scale;
        return true;
    });
}

/* Reduce onto root (the others' recv is not written). */
ncclResult_t ncclReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op, int root,
                        ncclComm_t comm, cudaStream_t stream) {
    if (ncclResult_t r = check_call(comm, type, root)) return r;
    if (count == 0) return ncclSuccess;
    bool at_root = comm->rank == root;
    if (!emu_device_range(send, count * 4) || (at_root && !emu_device_range(recv, count * 4)))
        emu_fail("ncclReduce(%p -> %p, %zu floats): a buffer is not inside one device allocation", send, recv, count);
    if (count > (size_t)INT32_MAX) return ncclInvalidArgument;
    MPI_Op mop = mpi_op(op);
    float scale = op == ncclAvg ? 1.0f / (float)comm->nranks : 1.0f;
    return collective(stream, "ncclReduce", send, count * 4, recv, at_root ? count : 0, [&](float *staged) {
        if (MPI_Reduce(send, at_root ? staged : NULL, (int)count, MPI_FLOAT, mop, root, comm->mpi) != MPI_SUCCESS)
            return false;
        if (at_root && scale != 1.0f)
            for (size_t i = 0; i < count; i++) staged[i] *= scale;
        return true;
    });
}

/* root's send to every rank's recv. */
ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t type, int root, ncclComm_t comm,
                           cudaStream_t stream) {
    if (ncclResult_t r = check_call(comm, type, root)) return r;
    if (count == 0) return ncclSuccess;
    bool at_root = comm->rank == root;
    if (!emu_device_range(recv, count * 4) || (at_root && !emu_device_range(send, count * 4)))
        emu_fail("ncclBroadcast(%p -> %p, %zu floats): a buffer is not inside one device allocation", send, recv,
                 count);
    if (count > (size_t)INT32_MAX) return ncclInvalidArgument;
    return collective(stream, "ncclBroadcast", send, at_root ? count * 4 : 0, recv, count, [&](float *staged) {
        if (at_root) memcpy(staged, send, count * 4);
        return MPI_Bcast(staged, (int)count, MPI_FLOAT, root, comm->mpi) == MPI_SUCCESS;
    });
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
