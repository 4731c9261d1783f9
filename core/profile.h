/* core/profile.h — where a training step's time goes.
 *
 * A Profile collects per-op seconds. When a Graph's `prof` is set, the graph
 * records them itself: the forward time of an op is the wall time since the
 * previous tape record (or profile_mark), which is its kernel plus the few
 * lines of model code around it (ops run eagerly, so nothing else happens in
 * between); the backward time of an op is its tape entry's replay. Ops run
 * without a tape (no-grad passes) are folded into the next recorded op, so
 * profile only steps whose forward records every op (training steps). With
 * `prof` NULL (the default) the graph does no timing at all.
 * On a GPU these are launch times, not kernel times: the bench that reads
 * them (tests/bench/bench_profile.c) runs on the CPU. */
#ifndef CORE_PROFILE_H
#define CORE_PROFILE_H

#define PROFILE_MAX_OPS 64

typedef struct ProfileOp {
    const char *name; /* the op's name as recorded on the tape (a literal) */
    double fwd_s, bwd_s;
    long fwd_n, bwd_n;
} ProfileOp;

typedef struct Profile {
    ProfileOp op[PROFILE_MAX_OPS];
    int n_ops;
    double mark; /* when the op being timed began */
} Profile;

/* Seconds on the monotonic clock. */
double core_now_s(void);

void profile_reset(Profile *p);
/* The next recorded op's forward starts now. */
void profile_mark(Profile *p);
/* An op was recorded: its forward ran since the last mark. Marks again. */
void profile_forward(Profile *p, const char *op);
void profile_backward(Profile *p, const char *op, double seconds);
/* Sums over every op. */
double profile_forward_total(const Profile *p);
double profile_backward_total(const Profile *p);

#endif
