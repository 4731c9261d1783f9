/* tests/test_mem_plan.c — the memory plan (train/mem_plan.h) against what
 * the allocator measures (core_alloc_live_bytes / core_alloc_peak_bytes)
 * for the real trainer on the CPU: a small JiT (64 tokens, hidden 128,
 * depth 4, SLA2) whose step outgrows the step arena's first block, with
 * and without PixelGen's losses (random frozen networks at 1/4 width, every
 * sample through the perceptual gate, the adaptive weight measured), with
 * train.recompute none and block. Two checks, each within 10%:
 *   state: what trainer_init leaves allocated, less the step arena's first
 *          block, against the plan's state categories;
 *   peak:  the most held during the first training step (the arena's
 *          growth: later steps hold one block of its high-water size) against
 *          the plan's peak.
 * The break: the plan with any one category left out that is at least 12%
 * of its check's total must fail that check (so a category the plan
 * forgot is caught); smaller ones are listed as below the check's reach. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "train/mem_plan.h"
#include "train/trainer.h"
#include "trainer_fixture.h"

static void make_data(void) { fixture_make_rgb_data("jit-mem-plan"); }

static int within(double plan, double measured, double tol) { return fabs(plan - measured) <= tol * measured; }

static void check_plan(int pixelgen, const char *level, int lv) {
    const char *losses = "losses: {repa_weight: 0.5, lpips_weight: 1.0, pdino_weight: 1.0, frozen_random_div: 4,\n"
                         "         align_layer: 1, adaptive_start: 0, adaptive_every: 1, percept_t_threshold: 0}\n";
    char data[320], rc[64], name[64];
    snprintf(data, sizeof data, "data.train=%s/rgb", fixture_dir);
    snprintf(rc, sizeof rc, "train.recompute=%s", level);
    snprintf(name, sizeof name, "plan-%d-%s", pixelgen, level);
    char *ov[] = {"model.in_channels=3", data, rc, "model.patch=2", "model.hidden=128", "model.depth=4",
                  "model.heads=4"};
    FixtureRun o = {.device = "cpu", .precision = "fp32", .batch = pixelgen ? 4 : 16, .extra = pixelgen ? losses : NULL};
    Config c = fixture_tiny_config(name, 1, &o, 7, ov);

    MemPlan p;
    mem_plan_compute(&c, 1, &p);

    size_t live0 = core_alloc_live_bytes();
    core_alloc_peak_reset();
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    size_t first_block = T.g.arena.capacity + T.g.scratch.capacity;
    double state_meas = (double)(core_alloc_live_bytes() - live0 - first_block);
    cr_assert(isfinite(trainer_step(&T))); /* the first step holds the most: its arena grows */
    double peak_meas = (double)(core_alloc_peak_bytes() - live0);
    trainer_free(&T);

    double state_plan = 0;
    for (int i = 0; i < MP_N_STATE; i++) state_plan += (double)p.state[i];
    double peak_plan = (double)p.peak[lv];
    printf("mem_plan: PixelGen %s, recompute %-9s state plan %.0f measured %.0f (%+.1f%%), peak plan %.0f measured "
           "%.0f (%+.1f%%)\n",
           pixelgen ? "on " : "off", level, state_plan, state_meas, 100 * (state_plan / state_meas - 1), peak_plan,
           peak_meas, 100 * (peak_plan / peak_meas - 1));
    cr_expect(within(state_plan, state_meas, 0.10), "state: plan %.0f vs measured %.0f", state_plan, state_meas);
    cr_expect(within(peak_plan, peak_meas, 0.10), "peak: plan %.0f vs measured %.0f", peak_plan, peak_meas);
    cr_expect(p.step[lv][MP_ACT] > 0 && p.step[lv][MP_BACKWARD] > 0 && (!pixelgen || p.step[lv][MP_LOSS_ACT] > 0));

    /* The break: a category left out. */
    for (int i = 0; i < MP_N_STATE; i++) {
        double b = (double)p.state[i];
        if (b >= 0.12 * state_meas)
            cr_expect(!within(state_plan - b, state_meas, 0.10), "state without category %d still passes", i);
        else if (b > 0)
            printf("mem_plan:   state category %d (%.0f bytes) is below the 10%% check's reach\n", i, b);
    }
    for (int i = 0; i < MP_N_STEP; i++) {
        double b = (double)p.step[lv][i];
        if (b >= 0.12 * peak_meas)
            cr_expect(!within(peak_plan - b, peak_meas, 0.10), "peak without step category %d still passes", i);
        else if (b > 0)
            printf("mem_plan:   step category %d (%.0f bytes) is below the 10%% check's reach\n", i, b);
    }
}

Test(mem_plan, matches_the_allocator_without_pixelgen, .init = make_data) {
    check_plan(0, "none", 0);
    check_plan(0, "block", 2);
}

Test(mem_plan, matches_the_allocator_with_pixelgen, .init = make_data) {
    check_plan(1, "none", 0);
    check_plan(1, "block", 2);
}
