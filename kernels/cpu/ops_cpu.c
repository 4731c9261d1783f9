/* kernels/cpu/ops_cpu.c — the CPU op table, the reference backend: every
 * entry of core/op_list.h filled with its kernel cpu_<name> (declared in
 * kernels/cpu/cpu.h, defined in the file of its kind there). Generated from
 * the list, so the table has every entry, in the struct's order. */
#include "kernels/cpu/cpu.h"

const OpTable ops_cpu = {
    .name = "cpu",
#define OP(ret, op, params) .op = cpu_##op,
#include "core/op_list.h"
#undef OP
};
