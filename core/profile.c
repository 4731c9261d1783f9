/* core/profile.c — per-op timing (see profile.h). */
#include "core/profile.h"

#include <string.h>
#include <time.h>

double core_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void profile_reset(Profile *p) {
    memset(p, 0, sizeof *p);
    p->mark = core_now_s();
}

void profile_mark(Profile *p) { p->mark = core_now_s(); }

static ProfileOp *profile_op(Profile *p, const char *name) {
    for (int i = 0; i < p->n_ops; i++)
        if (p->op[i].name == name || strcmp(p->op[i].name, name) == 0) return &p->op[i];
    if (p->n_ops == PROFILE_MAX_OPS) return &p->op[PROFILE_MAX_OPS - 1]; /* more kinds than any model has */
    p->op[p->n_ops].name = name;
    return &p->op[p->n_ops++];
}

void profile_forward(Profile *p, const char *op) {
    double t = core_now_s();
    ProfileOp *o = profile_op(p, op);
    o->fwd_s += t - p->mark;
    o->fwd_n++;
    p->mark = t;
}

void profile_backward(Profile *p, const char *op, double seconds) {
    ProfileOp *o = profile_op(p, op);
    o->bwd_s += seconds;
    o->bwd_n++;
}

double profile_forward_total(const Profile *p) {
    double s = 0;
    for (int i = 0; i < p->n_ops; i++) s += p->op[i].fwd_s;
    return s;
}

double profile_backward_total(const Profile *p) {
    double s = 0;
    for (int i = 0; i < p->n_ops; i++) s += p->op[i].bwd_s;
    return s;
}
