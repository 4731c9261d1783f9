#!/usr/bin/python3
"""tests/prep_test.py — jit-prep's class-folder mode (--image-dir) against PIL.

  1. resize: JPEG and PNG files of odd sizes and aspect ratios (517x333,
     333x517, 1000x701, gray, CMYK, palette, RGBA, progressive, 4:4:4, a PNG
     named .JPEG, and images smaller than S that must be enlarged by bicubic)
     go through jit-prep at S = 32 and 64; every pixel of every shard image
     equals ADM's center_crop_arr run by PIL on Image.open(f).convert("RGB")
     within 1 grey level (--channels 3), and the same with --channels 1 on the
     Rec. 601 luma jit-prep documents; labels and class names follow the
     sorted folders;
  2. unreadable files (a truncated JPEG, random bytes named .jpg, a zero-byte
     .jpeg, text named .png) are skipped, named on stderr and counted, and
     the good files are written; a folder of bad files only is an error;
  2b. limits: a PNG bomb (a valid 1.7 MB PNG of 20000 x 20000 zero pixels,
     which took 1.28 GB to decode) is skipped as too large from its header
     under the default --max-pixels (Pillow's 89,478,485); --max-pixels
     20000 skips a 200 x 150 JPEG and PNG as well; a dangling symbolic link,
     a link loop and a FIFO named as images are each named and counted
     among the skipped files (they were silently left out);
  3. parallel: --threads 2 and `mpirun -np 2` write the same shard files,
     image for image and label for label, as a serial run (--threads 1),
     and the loader opens the mpirun-written set (jit-prep --check).

Run with Debian's python3 (PIL 9.4 and h5py): tests/CMakeLists.txt registers it.
usage: prep_test.py JIT_PREP WORK_DIR
"""
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib

import numpy as np

from checks import Checks

try:
    import h5py
    from PIL import Image
except ImportError as e:  # the test cannot judge anything without them
    sys.exit(f"prep_test: {e}: install python3-pil and python3-h5py (scripts/setup.sh)")

PREP, WORK = sys.argv[1], sys.argv[2]
MPIRUN = ["mpirun", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none", "-x", "OMP_NUM_THREADS=1"]
T = Checks("prep_test")
check = T.check  # check(cond, what, detail): detail (e.g. the program's output) is printed only on failure


def center_crop_arr(pil_image, image_size):
    """ADM's (guided-diffusion) center_crop_arr, as JiT's util/crop.py has it."""
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y:crop_y + image_size, crop_x:crop_x + image_size]


def reference(path, size, channels):
    """What jit-prep must write for path: C x S x S."""
    rgb = Image.open(path).convert("RGB")
    if channels == 1:  # jit-prep's luma, then the same resize on the gray image
        a = np.array(rgb).astype(np.int64)
        luma = (299 * a[..., 0] + 587 * a[..., 1] + 114 * a[..., 2] + 500) // 1000
        return center_crop_arr(Image.fromarray(luma.astype(np.uint8), "L"), size)[None]
    return center_crop_arr(rgb, size).transpose(2, 0, 1)


rng = np.random.default_rng(20240613)


def content(w, h, c=3):
    """Smooth waves plus noise and a hard edge: bicubic overshoot gets clipped too."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for k in range(c):
        fx, fy, ph = rng.uniform(3, 40), rng.uniform(3, 40), rng.uniform(0, 6.3)
        p = 128 + 90 * np.sin(x / fx + y / fy + ph) + rng.normal(0, 20, (h, w))
        p[:, (w * 2) // 3:] += 120 * (k % 2 * 2 - 1)
        planes.append(p)
    return np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)


def run(args, mpi=0):
    cmd = (MPIRUN + ["-np", str(mpi)] if mpi else []) + [PREP] + args
    return subprocess.run(cmd, capture_output=True, text=True)


def read_shards(out):
    """{file name: (images, labels, class names)} of every *.h5 in out."""
    res = {}
    for name in sorted(os.listdir(out)):
        if name.endswith(".h5"):
            with h5py.File(os.path.join(out, name), "r") as f:
                res[name] = (f["images"][...], f["labels"][...], [str(s) if isinstance(s, str) else s.decode()
                                                                   for s in f.attrs["class_names"]])
    return res


def all_images(out):
    shards = read_shards(out)
    ims = [s[0] for s in shards.values()]
    labs = [s[1] for s in shards.values()]
    return (np.concatenate(ims) if ims else None), (np.concatenate(labs) if labs else None), shards


shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)

# ---- 1. resize parity with PIL ----
par = os.path.join(WORK, "parity")
files = []  # (path, label) in the order jit-prep must write them: sorted classes, sorted names


def save(cls, name, arr, mode=None, **kw):
    d = os.path.join(par, cls)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, name)
    im = Image.fromarray(arr) if mode is None else Image.fromarray(arr, mode)
    im.save(p, **kw)
    return p


save("a_jpeg", "01_517x333.jpg", content(517, 333), format="JPEG", quality=90)
save("a_jpeg", "02_333x517.JPEG", content(333, 517), format="JPEG", quality=90)
save("a_jpeg", "03_1000x701.jpeg", content(1000, 701), format="JPEG", quality=90)
save("a_jpeg", "04_gray_401x299.jpg", content(401, 299, 1)[..., 0], "L", format="JPEG", quality=90)
save("a_jpeg", "05_444_257x190.jpg", content(257, 190), format="JPEG", quality=95, subsampling=0)
save("a_jpeg", "06_progressive_300x201.jpg", content(300, 201), format="JPEG", quality=85, progressive=True)
save("a_jpeg", "07_tiny_21x13.jpg", content(21, 13), format="JPEG", quality=90)
save("a_jpeg", "08_cmyk_300x211.jpg", content(300, 211, 4), "CMYK", format="JPEG", quality=90)
save("b_png", "01_517x333.png", content(517, 333), format="PNG")
save("b_png", "02_333x517.PNG", content(333, 517), format="PNG")
save("b_png", "03_gray_257x129.png", content(257, 129, 1)[..., 0], "L", format="PNG")
save("b_png", "04_tiny_20x13.png", content(20, 13), format="PNG")
save("b_png", "05_tiny_5x7.png", content(5, 7), format="PNG")
save("b_png", "06_exact_128x64.png", content(128, 64), format="PNG")
save("b_png", "07_rgba_90x70.png", content(90, 70, 4), "RGBA", format="PNG")
p = save("b_png", "08_palette_150x99.png", content(150, 99), format="PNG")
Image.open(p).convert("P", palette=Image.ADAPTIVE, colors=64).save(p)
save("c_misc", "png_named.JPEG", content(200, 300), format="PNG")
for cls_i, cls in enumerate(sorted(os.listdir(par))):
    for name in sorted(os.listdir(os.path.join(par, cls))):
        files.append((os.path.join(par, cls, name), cls_i))

for size, channels in ((32, 3), (64, 3), (32, 1)):
    out = os.path.join(WORK, f"parity-out-{size}-{channels}")
    r = run(["--image-dir", par, "--out", out, "--size", str(size), "--channels", str(channels), "--threads", "2"])
    check(r.returncode == 0, f"S={size} C={channels}: jit-prep exits 0", r.stdout + r.stderr)
    if r.returncode:
        continue
    imgs, labs, shards = all_images(out)
    names = next(iter(shards.values()))[2]
    check(names == ["a_jpeg", "b_png", "c_misc"], f"S={size} C={channels}: class names from the sorted folders {names}")
    check(imgs.shape == (len(files), channels, size, size), f"S={size} C={channels}: {imgs.shape[0]} images written")
    check(list(labs) == [l for _, l in files], f"S={size} C={channels}: labels in folder order")
    worst, worst_name, exact = 0, "", 0
    for i, (path, _) in enumerate(files):
        ref = reference(path, size, channels).astype(np.int64)
        d = int(np.abs(ref - imgs[i].astype(np.int64)).max())
        exact += d == 0
        if d > worst:
            worst, worst_name = d, os.path.basename(path)
    check(worst <= 1, f"S={size} C={channels}: every pixel within 1 grey level of PIL's center_crop_arr "
                      f"(largest difference {worst}{' in ' + worst_name if worst else ''}; {exact}/{len(files)} images "
                      "bit-identical)")

# ---- 2. unreadable files are skipped and counted ----
bad = os.path.join(WORK, "bad")
os.makedirs(os.path.join(bad, "k"))
good = [save_p for save_p in (os.path.join(bad, "k", "good1.jpg"), os.path.join(bad, "k", "good2.png"))]
Image.fromarray(content(120, 90)).save(good[0], quality=90)
Image.fromarray(content(90, 120)).save(good[1])
whole = os.path.join(WORK, "whole.jpg")
Image.fromarray(content(160, 120)).save(whole, quality=90)
data = open(whole, "rb").read()
bad_files = {
    "a_truncated.jpg": data[: len(data) * 6 // 10],
    "b_noise.jpg": rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(),
    "c_empty.jpeg": b"",
    "d_text.png": b"this is not an image\n",
}
for name, b in bad_files.items():
    with open(os.path.join(bad, "k", name), "wb") as f:
        f.write(b)
out = os.path.join(WORK, "bad-out")
r = run(["--image-dir", bad, "--out", out, "--size", "32"])
check(r.returncode == 0, "a folder with 4 bad files of 6 exits 0", r.stdout + r.stderr)
for name in bad_files:
    check(os.path.join(bad, "k", name) in r.stderr and "skipped" in r.stderr, f"{name} is named as skipped")
check("truncated" in r.stderr.split("a_truncated.jpg")[-1].split("\n")[0], "the truncated JPEG is reported as truncated")
check("4 image files skipped" in r.stdout, "the skipped files are counted (4)")
imgs, labs, _ = all_images(out) if os.path.isdir(out) else (None, None, None)
ok = imgs is not None and imgs.shape[0] == 2
if ok:
    g = sorted(good)
    ok = all(np.abs(imgs[i].astype(int) - reference(g[i], 32, 3).astype(int)).max() <= 1 for i in range(2))
check(ok, "the 2 good files are written, equal to PIL")
allbad = os.path.join(WORK, "allbad")
os.makedirs(os.path.join(allbad, "k"))
for name, b in bad_files.items():
    with open(os.path.join(allbad, "k", name), "wb") as f:
        f.write(b)
r = run(["--image-dir", allbad, "--out", os.path.join(WORK, "allbad-out"), "--size", "32"])
check(r.returncode == 1 and "could be read" in r.stderr and not os.path.exists(os.path.join(WORK, "allbad-out",
                                                                                            "images-00000.h5")),
      f"a folder of bad files only is an error ({r.returncode}: {r.stderr.strip().splitlines()[-1:]})")

# ---- 2b. pixel limits and links ----
def png_bomb(path, side):
    """A valid gray PNG of side x side zero pixels: zlib shrinks its rows ~200:1."""
    def chunk(typ, body):
        return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body) & 0xFFFFFFFF)
    co = zlib.compressobj(1)
    rows = bytes(side + 1) * 100  # filter byte 0 + the row, 100 rows at a time
    idat = b"".join([co.compress(rows) for _ in range(side // 100)] + [co.flush()])
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


lim = os.path.join(WORK, "limits")
os.makedirs(os.path.join(lim, "k"))
Image.fromarray(content(60, 40)).save(os.path.join(lim, "k", "a_good.png"))
png_bomb(os.path.join(lim, "k", "b_bomb.png"), 20000)
t0 = time.time()
r = run(["--image-dir", lim, "--out", os.path.join(WORK, "limits-out"), "--size", "32"])
secs = time.time() - t0
bomb_line = [ln for ln in r.stderr.splitlines() if "b_bomb.png" in ln]
check(r.returncode == 0 and bomb_line and "20000 x 20000" in bomb_line[0] and "too large" in bomb_line[0]
      and "1 image file skipped" in r.stdout and secs < 10,
      f"a 20000 x 20000 PNG bomb is skipped from its header under the default limit ({secs:.1f} s)", r.stdout + r.stderr)
Image.fromarray(content(200, 150)).save(os.path.join(lim, "k", "c_big.jpg"), quality=90)
Image.fromarray(content(200, 150)).save(os.path.join(lim, "k", "d_big.png"))
os.symlink(os.path.join(lim, "k", "missing.jpg"), os.path.join(lim, "k", "e_dangling.jpg"))
os.symlink("f_loop.JPG", os.path.join(lim, "k", "f_loop.JPG"))
os.mkfifo(os.path.join(lim, "k", "g_fifo.png"))
r = run(["--image-dir", lim, "--out", os.path.join(WORK, "limits-out2"), "--size", "32", "--max-pixels", "20000"])
for name, why in (("b_bomb.png", "too large"), ("c_big.jpg", "200 x 150 pixels is too large"),
                  ("d_big.png", "200 x 150 pixels is too large"), ("e_dangling.jpg", "dangling"),
                  ("f_loop.JPG", "loop"), ("g_fifo.png", "not a regular file")):
    line = [ln for ln in r.stderr.splitlines() if "skipped" in ln and name in ln]
    check(bool(line) and why in line[0], f"--max-pixels 20000: {name} is named as skipped ({why})", r.stderr)
check(r.returncode == 0 and "6 image files skipped" in r.stdout and
      len(all_images(os.path.join(WORK, "limits-out2"))[0]) == 1,
      "--max-pixels 20000: 6 files skipped and counted, the 60 x 40 image written", r.stdout + r.stderr)

# ---- 3. threads and ranks write what a serial run writes ----
pdir = os.path.join(WORK, "par")
for c in range(3):
    os.makedirs(os.path.join(pdir, f"class{c}"))
    for j in range(7 + c):
        w, h = int(rng.integers(40, 200)), int(rng.integers(40, 200))
        p = os.path.join(pdir, f"class{c}", f"im{j:02d}.{'png' if j % 3 == 0 else 'jpg'}")
        Image.fromarray(content(w, h)).save(p, **({} if p.endswith("png") else {"quality": 90}))
with open(os.path.join(pdir, "class1", "im03_broken.jpg"), "wb") as f:
    f.write(data[:300])
common = ["--image-dir", pdir, "--size", "32", "--per-shard", "4"]
runs = {
    "serial": run(common + ["--out", os.path.join(WORK, "par-serial"), "--threads", "1"]),
    "threads2": run(common + ["--out", os.path.join(WORK, "par-threads2"), "--threads", "2"]),
    "mpi2": run(common + ["--out", os.path.join(WORK, "par-mpi2"), "--threads", "1"], mpi=2),
}
for k, r in runs.items():
    check(r.returncode == 0 and "1 image file skipped" in r.stdout, f"{k}: exits 0, 1 file skipped", r.stdout + r.stderr)
check("on 2 ranks" in runs["mpi2"].stdout, "mpirun -np 2 ran as 2 ranks", runs["mpi2"].stdout)
ref = read_shards(os.path.join(WORK, "par-serial"))
check(len(ref) == 7 and sum(v[0].shape[0] for v in ref.values()) == 24, f"serial: 24 images in 7 shards of <= 4 "
      f"({[v[0].shape[0] for v in ref.values()]})")
for k in ("threads2", "mpi2"):
    got = read_shards(os.path.join(WORK, f"par-{k}"))
    same = sorted(got) == sorted(ref) and all(
        np.array_equal(got[n][0], ref[n][0]) and np.array_equal(got[n][1], ref[n][1]) and got[n][2] == ref[n][2]
        for n in ref)
    check(same, f"{k}: the same shard files, images, labels and class names as the serial run")
# The loader's view (shardset_open + every image read, as the trainer opens a directory).
r = subprocess.run([PREP, "--check", os.path.join(WORK, "par-mpi2")], capture_output=True, text=True)
check(r.returncode == 0 and "7 shards, 24 images" in r.stdout, "the loader opens the mpirun-written set: 7 shards, "
      "24 images", r.stdout + r.stderr)

sys.exit(T.done())
