#!/usr/bin/python3
"""jit_interop.py: official JiT and PixelGen checkpoints in and out.

  jit_interop.py import-official checkpoint-last.pth --out DIR
                 [--config configs/jit-b16.yaml] [--set key=value]... [--jit-train PATH]
      The official JiT checkpoint (torch.save of model, model_ema1,
      model_ema2, optimizer, epoch, args) -> DIR/ckpt-<step>.h5 and DIR/latest,
      this framework's checkpoint: parameters, one EMA copy per decay of the
      config's optim.ema (matched by value to the file's 0.9999 and 0.9996),
      the AdamW moments and step, and the resolved configuration. jit-sample,
      jit-eval, jit-train --resume DIR and the SLA2Conversion callback
      (from: DIR) read it. Without --config the file's args.model picks
      configs/jit-<size>.yaml. --params-from model_ema1 makes the 0.9999 EMA
      the weights (what SLA2Conversion loads: convert the model the official
      code samples with).
  jit_interop.py import-pixelgen last.ckpt --out DIR --config FILE [--set ...]
      A PixelGen Lightning checkpoint (state_dict: denoiser.*, ema_denoiser.*,
      the REPA projector diffusion_trainer.proj.0.{0,2,4}.*). When the
      configuration trains REPA (losses.repa_weight > 0) the projector becomes
      the model's repa_proj.{0,2,4}.* (in the weights and every EMA copy: PixelGen
      averages none), so jit-train --resume continues it; otherwise its tensors
      are kept under their own names in the group /extra. The AdamW moments are not
      imported (Lightning's optimizer state does not name its tensors): they
      start at zero, with a warning.
  jit_interop.py export-official CKPT --out checkpoint-last.pth [--jit-train PATH]
      This framework's checkpoint (a file, or a run's checkpoint directory)
      -> a file the official code loads with load_state_dict(strict=True) and
      optimizer.load_state_dict. SLA2 parameters are dropped with a warning:
      the official code computes full attention, so an SLA2-trained model
      exported there computes something else.

The tensor mapping, the official optimizer order and where the recipes
differ are in docs/interop.md ("The official layout"). The model's
parameter list and the resolved configuration come from the C program
(jit-train --print-params / --print-config), so this script never restates
the model's layout; it only knows the official names and shapes.

Run with Debian's interpreter (/usr/bin/python3: python3-torch, python3-h5py,
python3-yaml). Every error names the file and the key.
"""

import argparse
import os
import subprocess
import sys
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CKPT_FORMAT = "jit-ckpt-v1"
OFFICIAL_EMA_DECAYS = (0.9999, 0.9996)   # model_ema1, model_ema2 (main_jit.py defaults)
PIXELGEN_EMA_DECAY = 0.9999
# Official shape -> ours is a reshape for these (interop.md): conv kernels and
# the in-context table's leading 1.
RESHAPED = ("x_embedder.proj1.weight", "x_embedder.proj2.weight", "in_context_posemb")
NAMED_CONFIG_FILES = {"JiT-B/16": "jit-b16.yaml", "JiT-L/16": "jit-l16.yaml", "JiT-H/16": "jit-h16.yaml"}


class InteropError(Exception):
    """A problem with the user's input: printed as one line, exit code 1."""


def warn(msg):
    print(f"warning: {msg}", file=sys.stderr)


# ----------------------------------------------------------------------------
# the C side: resolved configuration and parameter list
# ----------------------------------------------------------------------------

def find_jit_train(given):
    if given:
        return given
    for cand in (os.path.join(ROOT, "build", "jit-train"), os.path.join(ROOT, "build-release", "jit-train")):
        if os.access(cand, os.X_OK):
            return cand
    raise InteropError("cannot find jit-train (build the project, or pass --jit-train PATH)")


def run_jit_train(jit_train, args):
    r = subprocess.run([jit_train] + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise InteropError(r.stderr.strip() or f"{jit_train} {' '.join(args)} failed ({r.returncode})")
    return r.stdout


class Model:
    """The framework's view of one configuration: the resolved YAML text, the
    parsed configuration, and the parameters (name -> shape, decayed) in order."""

    def __init__(self, jit_train, config_args):
        import yaml
        self.yaml = run_jit_train(jit_train, config_args + ["--print-config"])
        self.cfg = yaml.safe_load(self.yaml)
        self.params = []          # (name, shape tuple), registration order
        for line in run_jit_train(jit_train, config_args + ["--print-params"]).splitlines():
            name, shape, _decay = line.split("\t")
            self.params.append((name, tuple(int(d) for d in shape.split("x"))))
        self.shape = dict(self.params)
        m = self.cfg["model"]
        self.depth, self.hidden, self.patch = m["depth"], m["hidden"], m["patch"]
        self.grid = m["img_size"] // m["patch"]
        self.in_context_len = m["in_context_len"]

    @classmethod
    def from_yaml_text(cls, jit_train, yaml_text, origin):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(yaml_text)
            tmp = f.name
        try:
            return cls(jit_train, ["--config", tmp])
        except InteropError as e:
            raise InteropError(f"{origin}: its saved configuration does not load: {e}")
        finally:
            os.unlink(tmp)


# The raw model's pos_embed is the float64 table rounded to float32 once (at
# init; it is frozen): within 6e-8 of the table, held to 1e-6.
POS_TABLE_TOL = 1e-6
F32_UNIT_ROUNDOFF = 2.0 ** -24
# A bound on |pos_embed| while an EMA averages it: the table holds sines and
# cosines (<= 1) and the EMA stays within 2e-3 of it (below).
POS_TABLE_MAX = 1.01


def ema_table_bound(decay):
    """How far an EMA copy's pos_embed may lie from the sin-cos table.

    The official update_ema (LTH14/JiT denoiser.py) averages every parameter,
    the frozen pos_embed p included, in float32: e <- fl(fl(d*e) + a*p), with
    the Python floats d = decay and a = 1 - decay rounded to float32 by the
    kernels. Those do not sum to 1 (0.9999: d + a - 1 = -1.7e-8; 0.9996:
    -6.8e-9), so e leaves the table, and each update also rounds: mul_ rounds
    d*e, add_ rounds a*p and the sum (or fuses them), at most 2u|e| with
    u = 2^-24. With E = e - p, starting from E = 0 (init_ema copies the model):
        E' = d*E + (d + a - 1)*p + r,   |r| <= 2u*M   (M = POS_TABLE_MAX)
    so after any number n of updates
        |E| <= (|d + a - 1| + 2u)*M * (1 - d^n)/(1 - d) < (|d + a - 1| + 2u)*M/(1 - d).
    We use 3u for the second-order terms, add POS_TABLE_TOL for p's own
    rounding, and leave out n: the optimizer's step need not count the EMA's
    updates (a fine-tune with a fresh optimizer keeps the EMA). 0.9999:
    2.0e-3; 0.9996: 4.7e-4. Measured with the official expression
    (docs/interop.md): 1.2e-5 after 202 updates, then a fixed point of the
    rounded update: 1.6e-4 (0.9999, from update 2,757 on) and 1.7e-5 (0.9996,
    from update 285 on). A wrong table (another layout, grid or hidden size,
    learned values) is off by O(0.1) or more, so it is still refused."""
    d = float(np.float32(decay))
    a = float(np.float32(1.0 - decay))
    if not 0.0 < d < 1.0:   # an EMA that never moves (decay 1) keeps the exact table
        return POS_TABLE_TOL
    per_update = (abs(d + a - 1.0) + 3 * F32_UNIT_ROUNDOFF) * POS_TABLE_MAX
    return POS_TABLE_TOL + per_update / (1.0 - d)


def sincos_table(D, g):
    """MAE's fixed 2D sin-cos position table [g*g, D] (float64): the first D/2
    channels encode the column, the last D/2 the row."""
    def one_d(dim, pos):
        omega = 1.0 / 10000.0 ** (np.arange(dim // 2, dtype=np.float64) / (dim // 2))
        out = np.outer(pos.astype(np.float64), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    idx = np.arange(g * g)
    return np.concatenate([one_d(D // 2, idx % g), one_d(D // 2, idx // g)], axis=1)


# ----------------------------------------------------------------------------
# official names, shapes and optimizer order
# ----------------------------------------------------------------------------

def official_shape(name, shape, model):
    """Our shape -> the official one (interop.md)."""
    if name == "x_embedder.proj1.weight":
        d, cpp = shape
        c = cpp // (model.patch * model.patch)
        return (d, c, model.patch, model.patch)
    if name == "x_embedder.proj2.weight":
        return shape + (1, 1)
    if name == "in_context_posemb":
        return (1,) + shape
    return shape


def official_order(depth, in_context):
    """Every trainable official parameter in registration order (util/misc.py's
    add_weight_decay walks this): in_context_posemb, t_embedder, y_embedder,
    x_embedder, the blocks, the final layer (pos_embed is frozen)."""
    names = ["in_context_posemb"] if in_context else []
    names += ["t_embedder.mlp.0.weight", "t_embedder.mlp.0.bias", "t_embedder.mlp.2.weight",
              "t_embedder.mlp.2.bias", "y_embedder.embedding_table.weight",
              "x_embedder.proj1.weight", "x_embedder.proj2.weight", "x_embedder.proj2.bias"]
    for i in range(depth):
        b = f"blocks.{i}."
        names += [b + n for n in ("norm1.weight", "attn.q_norm.weight", "attn.k_norm.weight",
                                  "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
                                  "norm2.weight", "mlp.w12.weight", "mlp.w12.bias", "mlp.w3.weight",
                                  "mlp.w3.bias", "adaLN_modulation.1.weight", "adaLN_modulation.1.bias")]
    names += ["final_layer.norm_final.weight", "final_layer.linear.weight", "final_layer.linear.bias",
              "final_layer.adaLN_modulation.1.weight", "final_layer.adaLN_modulation.1.bias"]
    return names


def official_groups(model):
    """(no-decay names, decay names): official add_weight_decay puts 1-D
    tensors and biases in group 0 and everything else in group 1."""
    order = official_order(model.depth, model.in_context_len > 0)
    no_decay = [n for n in order if len(model.shape[n]) == 1 or n.endswith(".bias")]
    decay = [n for n in order if n not in set(no_decay)]
    return no_decay, decay


def is_sla2(name):
    return ".attn.sla2." in name


def is_repa(name):
    """PixelGen's REPA projector (losses.repa_weight > 0): repa_proj.{0,2,4}.*
    here, diffusion_trainer.proj.0.{0,2,4}.* in PixelGen's checkpoints."""
    return name.startswith("repa_proj.")


PIXELGEN_PROJ = "diffusion_trainer.proj.0."


# ----------------------------------------------------------------------------
# reading the official file
# ----------------------------------------------------------------------------

def torch_load(path):
    import pickle
    import torch
    if not os.path.isfile(path):
        raise InteropError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu")
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, OSError,
            AttributeError, ModuleNotFoundError) as e:
        raise InteropError(f"{path}: cannot be read as a PyTorch checkpoint (truncated, corrupt or not a "
                           f"torch.save file): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def describe_file_model(sd, prefix):
    """What the tensors say about the model (for size-mismatch messages)."""
    blocks = {int(k[len(prefix):].split(".")[1]) for k in sd if k.startswith(prefix + "blocks.")}
    hid = sd.get(prefix + "t_embedder.mlp.2.weight")
    p1 = sd.get(prefix + "x_embedder.proj1.weight")
    parts = [f"depth {len(blocks)}"]
    if hid is not None:
        parts.append(f"hidden {hid.shape[0]}")
    if p1 is not None and p1.dim() == 4:
        parts.append(f"patch {p1.shape[-1]}, {p1.shape[1]} channels, bottleneck {p1.shape[0]}")
    return ", ".join(parts)


def to_ours(path, key, sd, prefix, name, model):
    """sd[prefix + name] as a float32 numpy array of our shape; errors name the key."""
    full = prefix + name
    if full not in sd:
        raise InteropError(f"{path}: {key} has no tensor '{full}'")
    t = sd[full]
    want = official_shape(name, model.shape[name], model)
    if tuple(t.shape) != want:
        raise InteropError(
            f"{path}: {key}['{full}'] has shape {list(t.shape)} but the configuration's model "
            f"({model.cfg['model']['name']}: depth {model.depth}, hidden {model.hidden}, patch {model.patch}, "
            f"{model.cfg['model']['in_channels']} channels) "
            f"needs {list(want)}; the file holds a model of {describe_file_model(sd, prefix)}: "
            f"import it with the configuration of its size")
    return t.detach().to(dtype=__import__("torch").float32).reshape(model.shape[name]).numpy()


def check_pos_embed(path, key, pe, prefix, model, ema_decay):
    """pos_embed must be the fixed table, which is computed here, not
    imported: within float32 rounding for the raw weights (ema_decay None),
    within ema_table_bound for an EMA copy, which averaged it."""
    table = sincos_table(model.hidden, model.grid)
    what = (f"{path}: {key}['{prefix}pos_embed'] is not the fixed sin-cos table of a "
            f"{model.grid}x{model.grid} grid with hidden {model.hidden}")
    got = pe.detach().double().reshape(-1).numpy()
    if got.size != table.size:
        raise InteropError(f"{what}: its shape is {list(pe.shape)}, the table's [1, {model.grid ** 2}, {model.hidden}]")
    diff = np.abs(got - table.reshape(-1))
    err = float(np.max(diff))
    bound = POS_TABLE_TOL if ema_decay is None else ema_table_bound(ema_decay)
    if not err <= bound:   # a NaN is refused too
        tok, ch = divmod(int(np.argmax(np.where(np.isfinite(diff), diff, np.inf))), model.hidden)
        why = ("the raw weights (float32 rounding of the table)" if ema_decay is None else
               f"an EMA of decay {ema_decay}, which averages the frozen table in float32 (docs/interop.md)")
        raise InteropError(f"{what}: it differs by {err:.3g} (token {tok}, channel {ch}), above the {bound:.2g} "
                           f"allowed for {why}")
    if ema_decay is not None and err > POS_TABLE_TOL:
        print(f"jit_interop: {key}['{prefix}pos_embed'] drifted {err:.2g} from the sin-cos table (the EMA of decay "
              f"{ema_decay} averaged the frozen table in float32; allowed {bound:.2g}): the exact table is used")
    return err


def convert_state(path, key, sd, prefix, model, extra_ok=(), ema_decay=None):
    """A state dict of official names -> {our name: array}, strictly: every
    parameter of the model present, nothing unknown left over. ema_decay: the
    decay of the EMA copy this is (None: the raw weights), for pos_embed."""
    if not isinstance(sd, dict) or not any(isinstance(k, str) and k.startswith(prefix) for k in sd):
        raise InteropError(f"{path}: '{key}' is not a state dict of '{prefix}*' tensors: not a JiT checkpoint")
    names = [n for n, _ in model.params if not is_sla2(n) and not is_repa(n)]
    blocks_file = {k[len(prefix):].split(".")[1] for k in sd if k.startswith(prefix + "blocks.")}
    if len(blocks_file) != model.depth:
        raise InteropError(f"{path}: '{key}' holds a model of {describe_file_model(sd, prefix)} but the "
                           f"configuration's model ({model.cfg['model']['name']}) has depth {model.depth}: "
                           f"import it with the configuration of its size")
    out = {n: to_ours(path, key, sd, prefix, n, model) for n in names}
    known = {prefix + n for n in names} | {prefix + "pos_embed"} | set(extra_ok)
    unknown = sorted(k for k in sd if k.startswith(prefix) and k not in known)
    if unknown:
        raise InteropError(f"{path}: {key} has tensors this model does not have: {', '.join(unknown[:5])}"
                           f"{' ...' if len(unknown) > 5 else ''}")
    pe = sd.get(prefix + "pos_embed")
    if pe is not None:
        check_pos_embed(path, key, pe, prefix, model, ema_decay)
    return out


def optimizer_state(path, opt, model):
    """The official AdamW state -> (m, v, step) keyed by our names."""
    import torch
    if not isinstance(opt, dict) or "state" not in opt or "param_groups" not in opt:
        raise InteropError(f"{path}: 'optimizer' is not a torch optimizer state_dict")
    groups = opt["param_groups"]
    no_decay, decay = official_groups(model)
    sizes = [len(g["params"]) for g in groups]
    if sizes != [len(no_decay), len(decay)]:
        raise InteropError(f"{path}: optimizer has parameter groups of {sizes} tensors; the official grouping "
                           f"of this model has [{len(no_decay)}, {len(decay)}] (no decay, decay): another model "
                           f"size or not the official AdamW")
    m, v, steps = {}, {}, set()
    for g, names in zip(groups, (no_decay, decay)):
        for idx, name in zip(g["params"], names):
            st = opt["state"].get(idx)
            if not st:
                continue
            want = official_shape(name, model.shape[name], model)
            for k, dst in (("exp_avg", m), ("exp_avg_sq", v)):
                if k not in st:
                    raise InteropError(f"{path}: optimizer state of {name} (index {idx}) has no '{k}'")
                if tuple(st[k].shape) != want:
                    raise InteropError(f"{path}: optimizer state '{k}' of {name} (index {idx}) has shape "
                                       f"{list(st[k].shape)}, the parameter {list(want)}: not this model's "
                                       f"optimizer order")
                dst[name] = st[k].detach().to(torch.float32).reshape(model.shape[name]).numpy()
            s = st.get("step", 0)
            steps.add(int(s.item() if hasattr(s, "item") else s))
    if len(steps) > 1:
        raise InteropError(f"{path}: optimizer state holds different step counts {sorted(steps)}")
    step = steps.pop() if steps else 0
    if m and len(m) != len(no_decay) + len(decay):
        raise InteropError(f"{path}: optimizer state covers {len(m)} of {len(no_decay) + len(decay)} tensors")
    return m, v, step, groups


# ----------------------------------------------------------------------------
# writing this framework's checkpoint
# ----------------------------------------------------------------------------

def write_ckpt(out_dir, model, params, emas, m, v, step, epoch, origin, extra=None):
    """out_dir/ckpt-<step>.h5 (written as .tmp, renamed when complete) and
    out_dir/latest, in io/ckpt.h's layout."""
    import h5py
    os.makedirs(out_dir, exist_ok=True)
    if os.path.exists(os.path.join(out_dir, "latest")):
        raise InteropError(f"{out_dir} already holds a checkpoint ('latest'): choose an empty directory")
    final = os.path.join(out_dir, f"ckpt-{step:08d}.h5")
    tmp = final + ".tmp"
    names = [n for n, _ in model.params]
    with h5py.File(tmp, "w", libver="earliest") as f:
        f.attrs["format"] = CKPT_FORMAT
        f.attrs["code_version"] = f"jit_interop.py ({origin})"
        for k, val in (("step", step), ("seed", int(model.cfg["run"]["seed"])), ("loader_epoch", epoch),
                       ("loader_offset", 0), ("world_size", 1), ("adam_step", step)):
            f.attrs.create(k, np.uint64(val), dtype=np.uint64)
        f.attrs["config"] = model.yaml
        f.attrs.create("ema_decays", np.array([d for d, _ in emas], dtype=np.float32))

        def group(gname, arrays):
            g = f.create_group(gname)
            for n in names:
                g.create_dataset(n, data=arrays[n].astype("<f4"), track_times=False)
        group("params", params)
        f.create_group("optim")
        zeros = {n: np.zeros(s, np.float32) for n, s in model.params}
        group("optim/m", m or zeros)
        group("optim/v", v or zeros)
        f.create_group("ema")
        for k, (_, e) in enumerate(emas):
            group(f"ema/{k}", e)
        if extra:
            g = f.create_group("extra")
            for n, a in extra.items():
                g.create_dataset(n, data=a.astype("<f4"), track_times=False)
    os.replace(tmp, final)
    with open(os.path.join(out_dir, "latest.tmp"), "w") as lf:
        lf.write(os.path.basename(final) + "\n")
    os.replace(os.path.join(out_dir, "latest.tmp"), os.path.join(out_dir, "latest"))
    return final


def match_emas(path, model, available):
    """The config's optim.ema decays, each matched to a file EMA by value."""
    out = []
    for d in model.cfg["optim"]["ema"] or []:
        hit = [a for a in available if abs(a[0] - d) < 1e-7]
        if not hit:
            raise InteropError(f"{path}: the configuration's optim.ema has decay {d}, the file has EMA copies "
                               f"with {[a[0] for a in available]} only: set optim.ema to those "
                               f"(e.g. --set optim.ema=[{', '.join(str(a[0]) for a in available)}])")
        out.append((d, hit[0][1]))
    dropped = [a[0] for a in available if all(abs(a[0] - d) >= 1e-7 for d, _ in out)]
    if dropped:
        warn(f"{path}: EMA copies with decay {dropped} are not in the configuration's optim.ema: not imported")
    return out


def model_for(args, file_model_name):
    cfg = args.config
    if not cfg:
        if file_model_name in NAMED_CONFIG_FILES:
            cfg = os.path.join(ROOT, "configs", NAMED_CONFIG_FILES[file_model_name])
            print(f"jit_interop: the file's args.model is {file_model_name}: using {cfg}")
        else:
            raise InteropError(f"{args.checkpoint}: args.model is {file_model_name!r}: pass --config for it")
    config_args = ["--config", cfg]
    for s in args.set or []:
        config_args += ["--set", s]
    model = Model(find_jit_train(args.jit_train), config_args)
    if model.cfg["model"].get("use_sla2"):
        raise InteropError(f"{cfg}: model.use_sla2 is true, but an imported JiT is full attention: import it "
                           f"with the full-attention configuration, then convert it with the SLA2Conversion "
                           f"callback (from: the import's directory); see docs/interop.md")
    return model


def cmd_import_official(args):
    path = args.checkpoint
    ck = torch_load(path)
    if not isinstance(ck, dict) or "model" not in ck:
        keys = list(ck.keys())[:8] if isinstance(ck, dict) else type(ck).__name__
        raise InteropError(f"{path}: not an official JiT checkpoint (no 'model' entry; found {keys})")
    fargs = ck.get("args")
    model = model_for(args, getattr(fargs, "model", None))
    if any(is_repa(n) for n, _ in model.params):
        raise InteropError(f"{path}: the configuration trains REPA (losses.repa_weight), whose projector an official "
                           f"JiT checkpoint does not have: import with --set losses.repa_weight=0")
    src = args.params_from
    if src not in ck:
        raise InteropError(f"{path}: --params-from {src}: the file has no '{src}'")
    decays = (getattr(fargs, "ema_decay1", OFFICIAL_EMA_DECAYS[0]),
              getattr(fargs, "ema_decay2", OFFICIAL_EMA_DECAYS[1]))
    decay_of = {"model": None, "model_ema1": float(decays[0]), "model_ema2": float(decays[1])}
    params = convert_state(path, src, ck[src], "net.", model, ema_decay=decay_of[src])
    available = []
    for key, d in zip(("model_ema1", "model_ema2"), decays):
        if key in ck:
            available.append((float(d), convert_state(path, key, ck[key], "net.", model, ema_decay=float(d))))
        else:
            warn(f"{path}: no '{key}' (EMA {d})")
    emas = match_emas(path, model, available)
    m = v = None
    step = 0
    if "optimizer" in ck:
        m, v, step, groups = optimizer_state(path, ck["optimizer"], model)
        o = model.cfg["optim"]
        g = groups[-1]
        if tuple(g.get("betas", ())) and any(abs(a - b) > 1e-9 for a, b in zip(g["betas"], o["betas"])):
            warn(f"{path}: the file's AdamW betas {list(g['betas'])} differ from the configuration's "
                 f"optim.betas {o['betas']}: training continues with the configuration's")
    else:
        warn(f"{path}: no 'optimizer': AdamW moments start at zero")
    if not m:
        warn(f"{path}: no AdamW state: moments start at zero and the step at 0")
    epoch = int(ck.get("epoch", -1)) + 1
    out = write_ckpt(args.out, model, params, emas, m, v, step, epoch, "official JiT import")
    print(f"jit_interop: {path} (epoch {epoch - 1}, AdamW step {step}) -> {out}: {len(params)} tensors from "
          f"'{src}', EMA decays {[d for d, _ in emas]}")


def cmd_import_pixelgen(args):
    path = args.checkpoint
    ck = torch_load(path)
    sd = ck.get("state_dict") if isinstance(ck, dict) else None
    if not isinstance(sd, dict) or not any(k.startswith("denoiser.") for k in sd):
        raise InteropError(f"{path}: not a PixelGen Lightning checkpoint (no 'state_dict' with 'denoiser.*')")
    if "denoiser.x_embedder.proj1.bias" in sd or "denoiser.net.x_embedder.proj1.bias" in sd:
        raise InteropError(f"{path}: the model uses PixelGen's single-conv patch embedding (use_bottleneck=False, "
                           f"x_embedder.proj1.bias, no proj2), which this framework's JiT does not have")
    net = "denoiser.net." if any(k.startswith("denoiser.net.") for k in sd) else "denoiser."
    ema_prefix = "ema_" + net
    model = model_for(args, None) if args.config else None
    if model is None:
        raise InteropError(f"{path}: pass --config for a PixelGen checkpoint (its size is not recorded)")
    projector = {k: sd[k] for k in sd if k.startswith("diffusion_trainer.proj.")}
    params = convert_state(path, "state_dict", sd, net, model, extra_ok=())
    available = []
    if any(k.startswith(ema_prefix) for k in sd):
        # PixelGen's EMA averages every parameter too: a pos_embed it holds drifts alike.
        available.append((PIXELGEN_EMA_DECAY, convert_state(path, "state_dict", sd, ema_prefix, model,
                                                            ema_decay=PIXELGEN_EMA_DECAY)))
    emas = match_emas(path, model, available)
    warn(f"{path}: PixelGen's optimizer state is not imported: AdamW moments start at zero and the step at 0")
    repa = [n for n, _ in model.params if is_repa(n)]
    extra = {}
    if repa:  # the configuration trains REPA: the projector becomes the model's, under our names
        for n in repa:
            key = PIXELGEN_PROJ + n[len("repa_proj."):]
            if key not in sd:
                raise InteropError(f"{path}: the configuration trains REPA (losses.repa_weight) but the file has no "
                                   f"'{key}' (PixelGen's projector)")
            a = sd[key].detach().float().numpy()
            if tuple(a.shape) != tuple(model.shape[n]):
                raise InteropError(f"{path}: '{key}' has shape {list(a.shape)}, the configuration's projector "
                                   f"{list(model.shape[n])} (model.hidden, and DINOv2's width 768)")
            params[n] = a
            for _, e in emas:  # PixelGen keeps no EMA of the projector: every copy starts from it
                e[n] = a
        unknown = sorted(k for k in projector if k[len(PIXELGEN_PROJ):] not in {n[len("repa_proj."):] for n in repa})
        if unknown:
            raise InteropError(f"{path}: unexpected projector tensor '{unknown[0]}': not PixelGen's 3-layer projector")
    else:
        extra = {k: v.detach().float().numpy() for k, v in projector.items()}
        if not extra:
            warn(f"{path}: no REPA projector (diffusion_trainer.proj.*) in the file")
    step = int(ck.get("global_step", 0))
    out = write_ckpt(args.out, model, params, emas, None, None, 0, int(ck.get("epoch", -1)) + 1,
                     "PixelGen import", extra)
    print(f"jit_interop: {path} (Lightning global step {step}) -> {out}: {len(params)} tensors, "
          f"EMA decays {[d for d, _ in emas]}, " +
          (f"the REPA projector as {len(repa)} repa_proj.* parameters" if repa else
           f"{len(extra)} projector tensors in /extra"))


# ----------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------

def resolve_ckpt(p):
    if os.path.isdir(p):
        latest = os.path.join(p, "latest")
        if not os.path.exists(latest):
            raise InteropError(f"{p} has no 'latest' file: no complete checkpoint in this directory")
        return os.path.join(p, open(latest).read().strip())
    if not os.path.isfile(p):
        raise InteropError(f"{p}: no such file")
    return p


def cmd_export_official(args):
    import argparse as ap
    import h5py
    import torch
    path = resolve_ckpt(args.checkpoint)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise InteropError(f"{path}: cannot open as HDF5 (truncated or not a checkpoint): {e}")
    with f:
        fmt = f.attrs.get("format")
        fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
        if fmt != CKPT_FORMAT:
            raise InteropError(f"{path}: format is {fmt!r}, expected {CKPT_FORMAT!r}")
        cfg_text = f.attrs["config"]
        cfg_text = cfg_text.decode() if isinstance(cfg_text, bytes) else cfg_text   # fixed-length: bytes
        model = Model.from_yaml_text(find_jit_train(args.jit_train), cfg_text, path)
        ours = [n for n, _ in model.params if not is_sla2(n) and not is_repa(n)]
        dropped = [n for n, _ in model.params if is_sla2(n)]
        if any(is_repa(n) for n, _ in model.params):
            warn(f"{path}: the REPA projector (repa_proj.*) is not exported: the official JiT has none")
        if dropped:
            warn(f"{path}: {len(dropped)} SLA2 tensors dropped ({dropped[0]}, ...): the official code computes "
                 f"full attention, so this SLA2-trained model computes something else there")

        def state(group):
            sd = {"net.pos_embed": torch.from_numpy(sincos_table(model.hidden, model.grid)).float()[None]}
            for n in ours:
                if n not in f[group]:
                    raise InteropError(f"{path}: {group}/{n} missing")
                a = torch.from_numpy(f[group][n][...].astype(np.float32))
                sd["net." + n] = a.reshape(official_shape(n, tuple(a.shape), model))
            return sd
        out = {"model": state("params")}
        decays = [float(d) for d in f.attrs.get("ema_decays", [])]
        for key, want in zip(("model_ema1", "model_ema2"), OFFICIAL_EMA_DECAYS):
            k = next((i for i, d in enumerate(decays) if abs(d - want) < 1e-7), None)
            if k is None:
                warn(f"{path}: no EMA with decay {want}: {key} is a copy of the raw weights")
                out[key] = state("params")
            else:
                out[key] = state(f"ema/{k}")
        # The optimizer through torch itself, so its state_dict has the
        # installed version's exact layout.
        no_decay, decay = official_groups(model)
        o = model.cfg["optim"]
        tensors = {n: torch.nn.Parameter(out["model"]["net." + n].clone()) for n in ours}
        opt = torch.optim.AdamW([{"params": [tensors[n] for n in no_decay], "weight_decay": 0.0},
                                 {"params": [tensors[n] for n in decay], "weight_decay": float(o["weight_decay"])}],
                                lr=float(o["lr"]), betas=tuple(float(b) for b in o["betas"]), eps=float(o["eps"]))
        step = int(f.attrs.get("adam_step", 0)) if "optim" in f else 0
        if step > 0:
            for n in ours:
                shape = tensors[n].shape
                opt.state[tensors[n]] = {
                    "step": torch.tensor(float(step)),
                    "exp_avg": torch.from_numpy(f["optim/m"][n][...].astype(np.float32)).reshape(shape),
                    "exp_avg_sq": torch.from_numpy(f["optim/v"][n][...].astype(np.float32)).reshape(shape)}
        out["optimizer"] = opt.state_dict()
        epoch = int(f.attrs.get("loader_epoch", 0)) - 1
        out["epoch"] = epoch
        out["args"] = ap.Namespace(model=model.cfg["model"]["name"], img_size=model.cfg["model"]["img_size"],
                                   class_num=model.cfg["model"]["num_classes"], ema_decay1=OFFICIAL_EMA_DECAYS[0],
                                   ema_decay2=OFFICIAL_EMA_DECAYS[1], exported_from=path)
    tmp = args.out + ".tmp"
    torch.save(out, tmp)
    os.replace(tmp, args.out)
    print(f"jit_interop: {path} (AdamW step {step}) -> {args.out}: {len(ours)} tensors + net.pos_embed, "
          f"epoch {epoch}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, fn in (("import-official", cmd_import_official), ("import-pixelgen", cmd_import_pixelgen)):
        s = sub.add_parser(name)
        s.add_argument("checkpoint")
        s.add_argument("--out", required=True, help="checkpoint directory to create")
        s.add_argument("--config", help="the framework's YAML for this model (full attention)")
        s.add_argument("--set", action="append", help="key.path=value override, as jit-train --set")
        s.add_argument("--jit-train", help="path of jit-train (default: build/jit-train)")
        if name == "import-official":
            s.add_argument("--params-from", default="model", choices=("model", "model_ema1", "model_ema2"),
                           help="what becomes the weights (default: model, the raw weights; for a conversion "
                                "to SLA2 the EMA the official code samples with, model_ema1)")
        s.set_defaults(fn=fn)
    s = sub.add_parser("export-official")
    s.add_argument("checkpoint", help="a checkpoint file or a checkpoint directory")
    s.add_argument("--out", required=True, help="the .pth file to write")
    s.add_argument("--jit-train", help="path of jit-train (default: build/jit-train)")
    s.set_defaults(fn=cmd_export_official)
    args = p.parse_args(argv)
    try:
        args.fn(args)
    except InteropError as e:
        print(f"jit_interop: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
