#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model (model.bin + tokenizer.json) into a whisper.cpp ggml file.

This module owns three things:
  * a reader for CTranslate2's `model.bin` (binary format version >= 4, `WhisperSpec`);
  * the writer of whisper.cpp's legacy ggml model format (magic 0x67676d6c, f16 weights), including
    the 80-bin Slaney mel filterbank (computed here, identical to librosa.filters.mel) and the
    byte-level BPE vocabulary decoded from tokenizer.json;
  * `--verify`, which parses a ggml file back and checks it against the tensor table that
    whisper.cpp's `whisper_model_load` builds (names, shapes, types, count), and, with --model-dir,
    that every tensor round-trips bit-exactly from the CTranslate2 source.

Usage:
  ct2_to_ggml.py --model-dir DIR --out FILE        # DIR holds model.bin, tokenizer.json [, config.json]
  ct2_to_ggml.py --verify FILE [--model-dir DIR]

Layout notes: CTranslate2 stores weights row-major in PyTorch's [out, in] layout, which is exactly
what ggml expects once the dims are written innermost-first, so nothing is transposed. Fused
projections are split by rows: self-attention linear_0 = [q; k; v], cross-attention linear_1 = [k; v].
whisper.cpp has no key bias; the fused key bias is checked to be ~0 (a constant key bias would not
change attention anyway, since it adds the same q.b to every score of a softmax row).
Only numpy is required.
"""

import argparse
import json
import mmap
import os
import re
import struct
import sys

import numpy as np

GGML_MAGIC = 0x67676D6C
GGML_F32, GGML_F16 = 0, 1
FTYPE_F16 = 1  # hparams.ftype: "mostly f16"

CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}  # 5 = bf16 (unsupported)

# Whisper head counts by model width, used when model.bin carries no */num_heads scalar.
HEADS_BY_WIDTH = {384: 6, 512: 8, 768: 12, 1024: 16, 1280: 20}


# --------------------------------------------------------------------------- CTranslate2 reader

class CT2Model:
    """Memory-mapped view of a CTranslate2 model.bin: `variables` maps name -> numpy array."""

    def __init__(self, path):
        self._file = open(path, "rb")
        self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._pos = 0
        version = self._u32()
        if version < 4:
            raise ValueError(f"{path}: CTranslate2 binary version {version} not supported (need >= 4)")
        self.version = version
        self.spec = self._string()
        if self.spec != "WhisperSpec":
            raise ValueError(f"{path}: spec is {self.spec!r}, not WhisperSpec")
        self.revision = self._u32()
        self.variables = {}
        for _ in range(self._u32()):
            name = self._string()
            rank = self._unpack("B")[0]
            dims = self._unpack(f"{rank}I") if rank else ()
            dtype_id = self._unpack("B")[0]
            nbytes = self._u32()
            if dtype_id not in CT2_DTYPES:
                raise ValueError(f"{name}: unsupported CTranslate2 dtype id {dtype_id}")
            dtype = np.dtype(CT2_DTYPES[dtype_id]).newbyteorder("<")
            count = int(np.prod(dims)) if rank else 1
            if count * dtype.itemsize != nbytes:
                raise ValueError(f"{name}: {nbytes} bytes for shape {dims} of {dtype}")
            arr = np.frombuffer(self._mm, dtype=dtype, count=count, offset=self._pos)
            self.variables[name] = arr.reshape(dims) if rank else arr[0]
            self._pos += nbytes
        self.aliases = {}
        if self._pos < len(self._mm):
            for _ in range(self._u32()):
                alias = self._string()
                self.aliases[alias] = self._string()
        if self._pos != len(self._mm):
            raise ValueError(f"{path}: {len(self._mm) - self._pos} trailing bytes")

    def _unpack(self, fmt):
        fmt = "<" + fmt
        vals = struct.unpack_from(fmt, self._mm, self._pos)
        self._pos += struct.calcsize(fmt)
        return vals

    def _u32(self):
        return self._unpack("I")[0]

    def _string(self):
        # u16 length including the trailing NUL, then the bytes.
        (n,) = self._unpack("H")
        raw = self._mm[self._pos:self._pos + n]
        self._pos += n
        if n == 0 or raw[-1] != 0:
            raise ValueError(f"malformed CTranslate2 string at offset {self._pos - n}")
        return raw[:-1].decode("utf-8")


# --------------------------------------------------------------------------- mel filterbank

def _hz_to_mel(f):
    """Slaney mel scale (librosa htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asanyarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    mels = f / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz(m):
    m = np.asanyarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters(sr=16000, n_fft=400, n_mels=80):
    """librosa.filters.mel(sr, n_fft, n_mels) with fmin=0, fmax=sr/2, Slaney scale and Slaney area
    normalisation; float32 [n_mels, 1 + n_fft//2], rounded the same way librosa rounds."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]  # in place on float32, as librosa does
    return weights


# --------------------------------------------------------------------------- vocabulary

def _byte_decoder():
    """Inverse of GPT-2's bytes_to_unicode(): printable chars stand for themselves, the rest are
    shifted to U+0100.. ."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def load_vocab(tokenizer_json):
    """Returns (tokens, specials): tokens = byte strings for ids 0..eot-1 (what whisper.cpp's
    converter writes), specials = {content: id} for the added tokens."""
    with open(tokenizer_json, encoding="utf-8") as f:
        tok = json.load(f)
    model = tok["model"]
    if model.get("type") != "BPE":
        raise ValueError(f"{tokenizer_json}: expected a BPE tokenizer, got {model.get('type')}")
    specials = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    eot = specials.get("<|endoftext|>")
    if eot is None:
        raise ValueError(f"{tokenizer_json}: no <|endoftext|> token")
    by_id = {i: s for s, i in model["vocab"].items()}
    dec = _byte_decoder()
    tokens = []
    for i in range(eot):
        if i not in by_id:
            raise ValueError(f"{tokenizer_json}: vocabulary has no id {i}")
        tokens.append(bytes(dec[c] for c in by_id[i]))
    return tokens, specials


def expected_special_ids(n_vocab):
    """Special-token ids whisper.cpp hard-codes (whisper_vocab + the shift applied at load)."""
    multilingual = n_vocab >= 51865
    ids = {"<|endoftext|>": 50256, "<|startoftranscript|>": 50257, "<|transcribe|>": 50358, "<|notimestamps|>": 50362}
    if multilingual:
        dt = (n_vocab - 51765 - 1) - 98
        ids = {"<|endoftext|>": 50257, "<|startoftranscript|>": 50258,
               "<|transcribe|>": 50358 + dt, "<|notimestamps|>": 50362 + dt}
    return ids


# --------------------------------------------------------------------------- whisper.cpp tensor table

def whisper_cpp_tensors(hp):
    """name -> (ne innermost-first, ggml type), mirroring whisper_model_load for ftype f16."""
    W = V = GGML_F16  # wtype (matrices) and vtype (conv kernels) for ftype = 1
    F = GGML_F32
    s, S = hp["n_audio_state"], hp["n_text_state"]
    t = {
        "encoder.positional_embedding": ((s, hp["n_audio_ctx"]), F),
        "encoder.conv1.weight": ((3, hp["n_mels"], s), V),
        "encoder.conv1.bias": ((1, s), F),
        "encoder.conv2.weight": ((3, s, s), V),
        "encoder.conv2.bias": ((1, s), F),
        "encoder.ln_post.weight": ((s,), F),
        "encoder.ln_post.bias": ((s,), F),
        "decoder.positional_embedding": ((S, hp["n_text_ctx"]), F),
        "decoder.token_embedding.weight": ((S, hp["n_vocab"]), W),
        "decoder.ln.weight": ((S,), F),
        "decoder.ln.bias": ((S,), F),
    }

    def block(prefix, n, attns):
        t[f"{prefix}.mlp_ln.weight"] = ((n,), F)
        t[f"{prefix}.mlp_ln.bias"] = ((n,), F)
        t[f"{prefix}.mlp.0.weight"] = ((n, 4 * n), W)
        t[f"{prefix}.mlp.0.bias"] = ((4 * n,), F)
        t[f"{prefix}.mlp.2.weight"] = ((4 * n, n), W)
        t[f"{prefix}.mlp.2.bias"] = ((n,), F)
        for a in attns:
            t[f"{prefix}.{a}_ln.weight"] = ((n,), F)
            t[f"{prefix}.{a}_ln.bias"] = ((n,), F)
            for p in ("query", "key", "value", "out"):
                t[f"{prefix}.{a}.{p}.weight"] = ((n, n), W)
                if p != "key":
                    t[f"{prefix}.{a}.{p}.bias"] = ((n,), F)

    for i in range(hp["n_audio_layer"]):
        block(f"encoder.blocks.{i}", s, ["attn"])
    for i in range(hp["n_text_layer"]):
        block(f"decoder.blocks.{i}", S, ["attn", "cross_attn"])
    return t


# --------------------------------------------------------------------------- conversion

def _count_layers(names, side):
    idx = {int(m.group(1)) for n in names if (m := re.match(rf"{side}/layer_(\d+)/", n))}
    if idx != set(range(len(idx))):
        raise ValueError(f"{side}: non-contiguous layer indices {sorted(idx)}")
    return len(idx)


def _heads(ct2, side, width):
    v = ct2.variables.get(f"{side}/num_heads")
    if v is not None:
        return int(v)
    if width not in HEADS_BY_WIDTH:
        raise ValueError(f"{side}: no num_heads in model.bin and unknown width {width}")
    return HEADS_BY_WIDTH[width]


def build(ct2):
    """Returns (hparams, [(ggml name, array)]) with arrays already in their output dtype."""
    v = ct2.variables
    used = set()

    def get(name):
        name = ct2.aliases.get(name, name)
        used.add(name)
        arr = v[name]
        if arr.dtype not in (np.float16, np.float32):
            raise ValueError(f"{name}: dtype {arr.dtype}; only float CTranslate2 models are supported")
        return arr

    f16 = lambda a: np.ascontiguousarray(a, dtype="<f2")  # noqa: E731
    f32 = lambda a: np.ascontiguousarray(a, dtype="<f4")  # noqa: E731

    conv1 = get("encoder/conv1/weight")
    emb = get("decoder/embeddings/weight")
    hp = {
        "n_vocab": emb.shape[0],
        "n_audio_ctx": get("encoder/position_encodings/encodings").shape[0],
        "n_audio_state": conv1.shape[0],
        "n_audio_head": _heads(ct2, "encoder", conv1.shape[0]),
        "n_audio_layer": _count_layers(v, "encoder"),
        "n_text_ctx": get("decoder/position_encodings/encodings").shape[0],
        "n_text_state": emb.shape[1],
        "n_text_head": _heads(ct2, "decoder", emb.shape[1]),
        "n_text_layer": _count_layers(v, "decoder"),
        "n_mels": conv1.shape[1],
        "ftype": FTYPE_F16,
    }
    if hp["n_audio_state"] != hp["n_text_state"]:
        raise ValueError("whisper.cpp requires n_audio_state == n_text_state")

    out = []
    max_k_bias = 0.0

    def lin(dst, src):  # weight [out, in] -> f16, bias -> f32
        out.append((f"{dst}.weight", f16(get(f"{src}/weight"))))
        out.append((f"{dst}.bias", f32(get(f"{src}/bias"))))

    def ln(dst, src):
        out.append((f"{dst}.weight", f32(get(f"{src}/gamma"))))
        out.append((f"{dst}.bias", f32(get(f"{src}/beta"))))

    def split(dst_prefix, src, parts, n):
        """Row-split a fused projection into `parts`; the key part gets no bias."""
        nonlocal max_k_bias
        w, b = get(f"{src}/weight"), get(f"{src}/bias")
        if w.shape != (len(parts) * n, n) or b.shape != (len(parts) * n,):
            raise ValueError(f"{src}: fused shape {w.shape}/{b.shape}, expected ({len(parts) * n}, {n})")
        for j, p in enumerate(parts):
            out.append((f"{dst_prefix}.{p}.weight", f16(w[j * n:(j + 1) * n])))
            if p == "key":
                max_k_bias = max(max_k_bias, float(np.abs(b[j * n:(j + 1) * n].astype(np.float32)).max()))
            else:
                out.append((f"{dst_prefix}.{p}.bias", f32(b[j * n:(j + 1) * n])))

    def mlp(dst, src):
        ln(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        lin(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        lin(f"{dst}.mlp.2", f"{src}/ffn/linear_1")

    n = hp["n_audio_state"]
    out.append(("encoder.positional_embedding", f32(get("encoder/position_encodings/encodings"))))
    for c in ("conv1", "conv2"):
        out.append((f"encoder.{c}.weight", f16(get(f"encoder/{c}/weight"))))
        out.append((f"encoder.{c}.bias", f32(get(f"encoder/{c}/bias")).reshape(-1, 1)))  # ne = [1, n]
    for i in range(hp["n_audio_layer"]):
        dst, src = f"encoder.blocks.{i}", f"encoder/layer_{i}"
        ln(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        split(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"), n)
        lin(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        mlp(dst, src)
    ln("encoder.ln_post", "encoder/layer_norm")

    out.append(("decoder.positional_embedding", f32(get("decoder/position_encodings/encodings"))))
    out.append(("decoder.token_embedding.weight", f16(emb)))
    for i in range(hp["n_text_layer"]):
        dst, src = f"decoder.blocks.{i}", f"decoder/layer_{i}"
        ln(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        split(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"), n)
        lin(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        ln(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        lin(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        split(f"{dst}.cross_attn", f"{src}/attention/linear_1", ("key", "value"), n)
        lin(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        mlp(dst, src)
    ln("decoder.ln", "decoder/layer_norm")

    # The output projection is tied to the embedding (alias); anything else unused is a mapping bug.
    unused = [k for k, a in v.items() if k not in used and np.ndim(a) > 0]
    if unused:
        raise ValueError(f"unmapped CTranslate2 weights: {unused[:8]}")
    if max_k_bias > 1e-3:
        print(f"warning: fused key bias is not ~0 (max |b| = {max_k_bias:g}); whisper.cpp drops it", file=sys.stderr)
    return hp, out, max_k_bias


HPARAM_ORDER = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
                "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype")


def convert(model_dir, out_path):
    ct2 = CT2Model(os.path.join(model_dir, "model.bin"))
    hp, tensors, max_k_bias = build(ct2)
    tokens, specials = load_vocab(os.path.join(model_dir, "tokenizer.json"))
    for name, want in expected_special_ids(hp["n_vocab"]).items():
        if specials.get(name) != want:
            raise ValueError(f"tokenizer.json: {name} has id {specials.get(name)}, whisper.cpp assumes {want}")

    # Cross-check head counts against config.json when it states them (CTranslate2's usually doesn't).
    cfg_path = os.path.join(model_dir, "config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            cfg = json.load(f)
        for key, hk in (("encoder_attention_heads", "n_audio_head"), ("decoder_attention_heads", "n_text_head")):
            if key in cfg and cfg[key] != hp[hk]:
                raise ValueError(f"config.json {key}={cfg[key]} disagrees with model.bin {hk}={hp[hk]}")

    table = whisper_cpp_tensors(hp)
    filters = mel_filters(n_mels=hp["n_mels"])
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<I", GGML_MAGIC))
        f.write(struct.pack("<11i", *(hp[k] for k in HPARAM_ORDER)))
        f.write(struct.pack("<ii", *filters.shape))  # n_mel, n_fft (= number of frequency bins, 201)
        f.write(filters.astype("<f4").tobytes())
        f.write(struct.pack("<i", len(tokens)))
        for tok in tokens:
            f.write(struct.pack("<I", len(tok)))
            f.write(tok)
        for name, arr in tensors:
            ne = tuple(reversed(arr.shape))
            ttype = GGML_F16 if arr.dtype == np.float16 else GGML_F32
            if table.get(name) != (ne, ttype):  # fail before whisper.cpp would
                raise ValueError(f"{name}: writing ne={ne} type={ttype}, whisper.cpp expects {table.get(name)}")
            raw = name.encode()
            f.write(struct.pack("<iii", len(ne), len(raw), ttype))
            f.write(struct.pack(f"<{len(ne)}i", *ne))
            f.write(raw)
            f.write(memoryview(arr).cast("B"))
    os.replace(tmp, out_path)
    print(f"{out_path}: {len(tensors)} tensors, {len(tokens)} vocab tokens, "
          f"hparams {', '.join(f'{k}={hp[k]}' for k in HPARAM_ORDER)}; max |fused key bias| = {max_k_bias:g}")


# --------------------------------------------------------------------------- verification

def read_ggml(path):
    """Parse a whisper ggml file: returns (hparams, filters, tokens, {name: (ne, ttype, array)})."""
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    pos = 0

    def unpack(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, mm, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    (magic,) = unpack("I")
    if magic != GGML_MAGIC:
        raise ValueError(f"{path}: bad magic {magic:#x}")
    hp = dict(zip(HPARAM_ORDER, unpack("11i")))
    n_mel, n_fft = unpack("ii")
    filters = np.frombuffer(mm, "<f4", n_mel * n_fft, pos).reshape(n_mel, n_fft)
    pos += filters.nbytes
    (n_tok,) = unpack("i")
    tokens = []
    for _ in range(n_tok):
        (ln,) = unpack("I")
        tokens.append(bytes(mm[pos:pos + ln]))
        pos += ln
    tensors = {}
    while pos < len(mm):
        n_dims, name_len, ttype = unpack("iii")
        ne = unpack(f"{n_dims}i")
        name = mm[pos:pos + name_len].decode()
        pos += name_len
        dtype = {GGML_F32: "<f4", GGML_F16: "<f2"}.get(ttype)
        if dtype is None:
            raise ValueError(f"{name}: unexpected ggml type {ttype}")
        if name in tensors:
            raise ValueError(f"{name}: duplicate tensor")
        count = int(np.prod(ne))
        arr = np.frombuffer(mm, dtype, count, pos).reshape(tuple(reversed(ne)))
        pos += arr.nbytes
        tensors[name] = (tuple(ne), ttype, arr)
    return hp, filters, tokens, tensors


def verify(path, model_dir=None):
    hp, filters, tokens, tensors = read_ggml(path)
    errors = []
    if hp["ftype"] != FTYPE_F16:
        errors.append(f"ftype {hp['ftype']} (this checker expects f16 = 1)")
    if hp["n_audio_state"] != hp["n_text_state"]:
        errors.append("n_audio_state != n_text_state")
    for side in ("audio", "text"):
        if hp[f"n_{side}_state"] % hp[f"n_{side}_head"]:
            errors.append(f"n_{side}_state not divisible by n_{side}_head")
    if filters.shape != (hp["n_mels"], 201):
        errors.append(f"mel filters {filters.shape}, whisper.cpp needs ({hp['n_mels']}, 201)")
    elif not np.allclose(filters, mel_filters(n_mels=hp["n_mels"]), rtol=0, atol=1e-7):
        errors.append("mel filters differ from the Slaney filterbank")
    eot = expected_special_ids(hp["n_vocab"])["<|endoftext|>"]
    if len(tokens) != eot:
        errors.append(f"{len(tokens)} vocab tokens, expected {eot} (ids below <|endoftext|>)")

    table = whisper_cpp_tensors(hp)
    for name, (ne, ttype) in table.items():
        if name not in tensors:
            errors.append(f"missing {name}")
        elif tensors[name][:2] != (ne, ttype):
            errors.append(f"{name}: ne={tensors[name][0]} type={tensors[name][1]}, expected ne={ne} type={ttype}")
    errors += [f"unknown tensor {n} (whisper.cpp would refuse the file)" for n in tensors if n not in table]
    bad = [n for n, (_, _, a) in tensors.items() if not np.isfinite(a).all()]
    errors += [f"{n}: non-finite values" for n in bad]

    if model_dir:  # bit-exact round trip against the CTranslate2 source
        ct2 = CT2Model(os.path.join(model_dir, "model.bin"))
        _, ref, max_k_bias = build(ct2)
        for name, arr in ref:
            got = tensors.get(name)
            if got is not None and not np.array_equal(got[2].reshape(arr.shape), arr):
                errors.append(f"{name}: data differs from model.bin")
        # Re-fuse the split projections and compare with the stored fused tensors.
        v = ct2.variables
        for i in range(hp["n_text_layer"]):
            b = f"decoder.blocks.{i}"
            kv = np.concatenate([tensors[f"{b}.cross_attn.key.weight"][2], tensors[f"{b}.cross_attn.value.weight"][2]])
            if not np.array_equal(kv, v[f"decoder/layer_{i}/attention/linear_1/weight"]):
                errors.append(f"{b}: cross-attention k|v does not re-fuse to linear_1")
        for side, n_layer in (("encoder", hp["n_audio_layer"]), ("decoder", hp["n_text_layer"])):
            for i in range(n_layer):
                b = f"{side}.blocks.{i}.attn"
                qkv = np.concatenate([tensors[f"{b}.{p}.weight"][2] for p in ("query", "key", "value")])
                if not np.array_equal(qkv, v[f"{side}/layer_{i}/self_attention/linear_0/weight"]):
                    errors.append(f"{b}: q|k|v does not re-fuse to linear_0")
        ref_tokens, _ = load_vocab(os.path.join(model_dir, "tokenizer.json"))
        if ref_tokens != tokens:
            errors.append("vocabulary differs from tokenizer.json")
        print(f"round trip vs {model_dir}: {len(ref)} tensors compared, max |fused key bias| = {max_k_bias:g}")

    n16 = sum(t == GGML_F16 for _, t, _ in tensors.values())
    print(f"{path}: {len(tensors)}/{len(table)} tensors ({n16} f16, {len(tensors) - n16} f32), "
          f"{len(tokens)} tokens, n_vocab={hp['n_vocab']} ({'multilingual' if hp['n_vocab'] >= 51865 else 'English-only'}), "
          f"layers {hp['n_audio_layer']}/{hp['n_text_layer']}, heads {hp['n_audio_head']}/{hp['n_text_head']}, "
          f"state {hp['n_audio_state']}")
    for e in errors:
        print(f"  ERROR {e}", file=sys.stderr)
    return not errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", help="directory with CTranslate2 model.bin, tokenizer.json [, config.json]")
    ap.add_argument("--out", help="ggml file to write")
    ap.add_argument("--verify", metavar="FILE", help="check a ggml file against whisper.cpp's loader")
    args = ap.parse_args()
    if args.verify:
        sys.exit(0 if verify(args.verify, args.model_dir) else 1)
    if not (args.model_dir and args.out):
        ap.error("--model-dir and --out are required (or use --verify FILE)")
    convert(args.model_dir, args.out)
    if not verify(args.out):
        sys.exit(1)


if __name__ == "__main__":
    main()
