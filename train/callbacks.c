/* train/callbacks.c — the SLA2 callbacks (see callbacks.h). */
#include "train/callbacks.h"

#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "io/ckpt.h"
#include "io/json.h"
#include "train/schedule.h"

static int has_sla2(const Trainer *T) { return T->cfg.model.use_sla2; }

void callbacks_on_train_start(Trainer *T) {
    for (int i = 0; i < T->cfg.n_callbacks; i++) {
        const CallbackConfig *cb = &T->cfg.callbacks[i];
        if (cb->type != CB_SLA2_CONVERSION) continue;
        T->stage1_lr = cb->stage1_lr;
        T->stage = T->step < (uint64_t)cb->stage1_steps ? 1 : 2;
        if (T->step > 0) continue; /* resumed: the checkpoint already holds the converted model */
        char path[1024];
        ckpt_resolve(cb->from, path, sizeof path);
        ParamStore *ps = &T->model.params;
        CkptData d = {.params = ps};
        int missing = ckpt_load(path, &d, NULL, NULL); /* into the host copy */
        params_push(ps);
        for (int k = 0; k < T->cfg.n_ema; k++) T->be->mem->copy(T->ema[k], ps->data, ps->padded * sizeof(float));
        if (trainer_rank(T) == 0)
            printf("SLA2Conversion: loaded %s; %d SLA2 parameters start from their initial values "
                   "(identity routers, alpha 0.9); stage 1 (router distillation) for %d steps, then stage 2\n",
                   path, missing, cb->stage1_steps);
        metrics_begin(&T->metrics);
        metrics_str(&T->metrics, "event", "conversion_loaded");
        metrics_str(&T->metrics, "from", path);
        metrics_int(&T->metrics, "new_parameters", missing);
        metrics_end(&T->metrics);
    }
}

void callbacks_on_step_start(Trainer *T) {
    long s = (long)T->step;
    JitModel *m = &T->model;
    T->collect_stats_now = 0;
    for (int i = 0; i < T->cfg.n_callbacks; i++) {
        const CallbackConfig *cb = &T->cfg.callbacks[i];
        switch (cb->type) {
        case CB_ROUTER_SCHEDULER:
            jit_sla2_set_topk(m, cb->layer,
                              schedule_ramp(cb->start_ratio, cb->target_ratio, s, cb->start_step, cb->warmup_steps,
                                            cb->ramp));
            break;
        case CB_SLA2_QAT: {
            int on = s >= cb->enable_step || T->cfg.model.sla2_enable_qat;
            if (on && !m->sla2_qat) {
                if (trainer_rank(T) == 0) printf("SLA2QATCallback: QAT on from step %ld\n", s);
                metrics_begin(&T->metrics);
                metrics_str(&T->metrics, "event", "qat_enabled");
                metrics_int(&T->metrics, "step", s);
                metrics_end(&T->metrics);
            }
            jit_sla2_set_qat(m, on);
            break;
        }
        case CB_QUANT_MONITOR: T->collect_stats_now |= s % cb->every == 0; break;
        case CB_SLA2_CONVERSION: {
            int stage = s < cb->stage1_steps ? 1 : 2;
            if (stage != T->stage && trainer_rank(T) == 0)
                printf("SLA2Conversion: stage 2 from step %ld (router frozen, hard top-k, diffusion loss)\n", s);
            T->stage = stage;
            ParamStore *ps = &m->params;
            if (stage == 1) { /* model frozen; router and alpha learn the distillation loss */
                params_set_trainable(ps, NULL, false);
                params_set_trainable(ps, ".attn.sla2.", true);
            } else { /* router frozen; weights and alpha learn the diffusion loss */
                params_set_trainable(ps, NULL, true);
                params_set_trainable(ps, ".attn.sla2.proj_", false);
            }
            jit_sla2_set_soft(m, stage == 1);
            break;
        }
        }
    }
}

/* Mean over SLA2 blocks of the current top-k ratio (what the logs show). */
static double mean_topk(const Trainer *T) {
    double s = 0;
    int n = 0;
    for (int i = 0; i < T->cfg.model.depth; i++)
        if (jit_layer_uses_sla2(&T->cfg.model, i)) s += T->model.sla2_topk[i], n++;
    return n ? s / n : 1.0;
}

void callbacks_on_step_end(Trainer *T) {
    Metrics *mt = &T->metrics;
    if (!has_sla2(T)) return;
    metrics_num(mt, "topk", mean_topk(T));
    metrics_int(mt, "qat", T->model.sla2_qat);
    if (T->stage) metrics_int(mt, "stage", T->stage);
    if (!T->collect_stats_now) return;
    /* QuantizedAttentionMonitor: per SLA2 block, the per-head statistics of this step's forward. */
    const JitConfig *c = &T->cfg.model;
    double frac = 0, qerr = 0, err = 0;
    int n = 0;
    FILE *f = metrics_value(mt, "sla2"); /* [{layer, topk, heads: [{...}, ...]}, ...]; NULL: only the sums */
    static const char *const names[5] = {"exact_fraction", "alpha", "captured_mass", "rel_l2_err", "qat_rel_err"};
    if (f) fputc('[', f);
    for (int i = 0; i < c->depth; i++) {
        if (!jit_layer_uses_sla2(c, i)) continue;
        if (f) {
            fprintf(f, "%s{\"layer\": %d, \"topk\": ", n ? ", " : "", i);
            json_write_number(f, T->model.sla2_topk[i]);
            fputs(", \"heads\": [", f);
        }
        for (int h = 0; h < c->heads; h++) {
            const Sla2Stats *s = &T->model.sla2_stats[i * c->heads + h];
            const double v[5] = {s->frac_exact, s->alpha, s->captured_mass, s->rel_l2_err, s->qat_rel_err};
            for (int j = 0; f && j < 5; j++) {
                fprintf(f, "%s\"%s\": ", j ? ", " : h ? ", {" : "{", names[j]);
                json_write_number(f, v[j]);
            }
            if (f) fputc('}', f);
            frac += s->frac_exact, qerr += s->qat_rel_err, err += s->rel_l2_err;
        }
        if (f) fputs("]}", f);
        n++;
    }
    if (f) fputc(']', f);
    int nh = n * c->heads;
    if (trainer_rank(T) == 0 && nh)
        printf("QuantizedAttentionMonitor step %llu: sparsity %.3f, rel. error vs full attention %.4f, "
               "QAT error %.4f (means over %d SLA2 blocks x %d heads)\n",
               (unsigned long long)T->step, 1.0 - frac / nh, err / nh, qerr / nh, n, c->heads);
}

void callbacks_on_checkpoint(Trainer *T, const char *path) {
    metrics_begin(&T->metrics);
    metrics_str(&T->metrics, "event", "checkpoint");
    metrics_int(&T->metrics, "step", (long long)T->step);
    metrics_str(&T->metrics, "path", path);
    metrics_end(&T->metrics);
}

void callbacks_on_train_end(Trainer *T) {
    metrics_begin(&T->metrics);
    metrics_str(&T->metrics, "event", "train_end");
    metrics_int(&T->metrics, "step", (long long)T->step);
    metrics_int(&T->metrics, "skipped_steps", T->skipped_total);
    metrics_end(&T->metrics);
}
