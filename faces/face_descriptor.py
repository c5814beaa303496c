"""dlib's 128-d face-recognition ResNet, read from dlib's own model file and run with numpy.

Why not dlib's `face_recognition_model_v1`: the dlib wheel we install is built without
BLAS, so its network takes ~160-250 ms a face on one core and holds the GIL all along
(measured, issue 13): a third of a photo check, and photos of one upload cannot be
screened side by side. The same weights through numpy's matrix product (OpenBLAS) take
~15-25 ms, release the GIL, and give dlib's numbers to float32 rounding
(tests/privacy/test_face_descriptor.py holds it to dlib's output on every fixture).

The face chip (150x150, aligned on the 5 landmarks, 0.25 padding) is still cut by dlib
(`dlib.get_face_chip`, what `compute_face_descriptor` does inside), so only the network
is ours. The file is parsed, not trusted blindly: every layer's name, shape and stride
must be what this network is (dlib's dnn_face_recognition_ex.cpp: a 29-layer ResNet),
else `ModelUnavailable`.

    chip -> (x - mean) / 256 -> con 7x7/2 -> affine -> relu -> max_pool 3x3/2
         -> 15 residual blocks (5 of them downsampling) -> average -> fc 256x128
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from errors import ModelUnavailable

CHIP_SIZE = 150  # the network's input side, pixels
CHIP_PADDING = 0.25  # dlib's default margin around the landmarks (compute_face_descriptor)

# Layer records in dlib's serialization: a length-prefixed name, then the layer's fields.
_NAMES = (b"input_rgb_image_sized", b"con_4", b"affine_", b"relu_", b"max_pool_2", b"avg_pool_2", b"add_prev_",
          b"fc_2")
_RECORD = re.compile(b"|".join(re.escape(bytes([1, len(n)]) + n) for n in _NAMES))


class _Reader:
    """dlib's serialization primitives (dlib/serialize.h, dlib/cuda/tensor.h)."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def int(self) -> int:
        control = self.data[self.pos]
        size = control & 0x0F
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent >= 32000:  # dlib's codes for inf, -inf, nan
            raise ValueError("non-finite number in model file")
        return mantissa * 2.0 ** exponent

    def string(self) -> bytes:
        size = self.int()
        value = self.data[self.pos:self.pos + size]
        self.pos += size
        return value

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise ValueError("unknown tensor version")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return values.astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        if self.int() != 1:
            raise ValueError("unknown alias_tensor version")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


@dataclass(frozen=True)
class _Conv:
    weights: np.ndarray  # (rows*cols*k, filters) float32: one column per filter, in _conv's patch order
    bias: np.ndarray  # (filters,)
    size: int
    stride: int
    padding: int


@dataclass(frozen=True)
class _Affine:
    gamma: np.ndarray  # (channels,)
    beta: np.ndarray


@dataclass(frozen=True)
class _Block:
    """relu(affine(con(relu(affine(con(x))))) + shortcut(x)); the shortcut is 2x2 average pooling when `down`."""

    conv1: _Conv
    affine1: _Affine
    conv2: _Conv
    affine2: _Affine
    down: bool


@dataclass(frozen=True)
class DescriptorNetwork:
    mean: np.ndarray  # (3,) RGB averages subtracted before dividing by 256
    stem: _Conv
    stem_affine: _Affine
    blocks: tuple[_Block, ...]
    fc: np.ndarray  # (256, 128)

    def descriptor(self, chip: np.ndarray) -> np.ndarray:
        """The 128-d descriptor (float32) of one 150x150x3 uint8 face chip."""
        if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected a {CHIP_SIZE}x{CHIP_SIZE} RGB chip")
        x = (chip.astype(np.float32) - self.mean) / np.float32(256)
        x = _relu(_affine(_conv(x, self.stem), self.stem_affine))
        x = _max_pool_3x3_2(x)
        for block in self.blocks:
            y = _relu(_affine(_conv(x, block.conv1), block.affine1))
            y = _affine(_conv(y, block.conv2), block.affine2)
            x = _relu(_add(y, _avg_pool_2x2_2(x) if block.down else x))
        return x.mean(axis=(0, 1), dtype=np.float32) @ self.fc


def load(path: Path) -> DescriptorNetwork:
    """Parse dlib_face_recognition_resnet_model_v1.dat; ModelUnavailable if it is not that network."""
    try:
        data = Path(path).read_bytes()
        return _parse(data)
    except (OSError, ValueError, IndexError) as exc:
        raise ModelUnavailable(f"the face descriptor network could not be read from {Path(path).name}: {exc}. "
                               "Reinstall face-recognition-models (see requirements.txt).") from None


def _parse(data: bytes) -> DescriptorNetwork:
    layers: list[tuple[bytes, object]] = []
    pos = 0
    while (found := _RECORD.search(data, pos)) is not None:
        reader = _Reader(data, found.start())
        name = reader.string()
        layers.append((name, _read_layer(name, reader)))
        pos = reader.pos  # past the layer's weights: a name inside them can never match
    kinds = [name for name, _ in layers]
    one_block = [b"con_4", b"affine_", b"relu_", b"con_4", b"affine_"]
    if kinds[:5] != [b"input_rgb_image_sized", b"con_4", b"affine_", b"relu_", b"max_pool_2"] or \
            kinds[-2:] != [b"avg_pool_2", b"fc_2"]:
        raise ValueError("unexpected layer sequence")
    mean = np.asarray(layers[0][1], dtype=np.float32)
    stem, stem_affine = layers[1][1], layers[2][1]
    blocks, i = [], 5
    while i < len(layers) - 2:
        if kinds[i:i + 5] != one_block:
            raise ValueError(f"unexpected layers at {i}")
        down = kinds[i + 5] == b"avg_pool_2"
        tail = [b"avg_pool_2", b"add_prev_", b"relu_"] if down else [b"add_prev_", b"relu_"]
        if kinds[i + 5:i + 5 + len(tail)] != tail:
            raise ValueError(f"unexpected layers at {i + 5}")
        blocks.append(_Block(layers[i][1], layers[i + 1][1], layers[i + 3][1], layers[i + 4][1], down))
        i += 5 + len(tail)
    fc = layers[-1][1]
    shapes = [(b.conv1.weights.shape[1], b.down) for b in blocks]
    expected = [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3 + [(128, True)] + [(128, False)] * 2 + \
        [(256, True)] + [(256, False)] * 2 + [(256, True)]
    if shapes != expected or fc.shape != (256, 128) or stem.weights.shape != (3 * 7 * 7, 32):
        raise ValueError("not dlib's face recognition ResNet")
    return DescriptorNetwork(mean=mean, stem=stem, stem_affine=stem_affine, blocks=tuple(blocks), fc=fc)


def _read_layer(name: bytes, r: _Reader) -> object:
    if name == b"input_rgb_image_sized":
        mean = (r.float(), r.float(), r.float())
        if (r.int(), r.int()) != (CHIP_SIZE, CHIP_SIZE):
            raise ValueError("unexpected input size")
        return mean
    if name == b"con_4":
        params = r.tensor().ravel()
        filters, rows, cols = r.int(), r.int(), r.int()
        stride_y, stride_x, pad_y, pad_x = r.int(), r.int(), r.int(), r.int()
        shape, bias_shape = r.alias(), r.alias()
        if rows != cols or stride_y != stride_x or pad_y != pad_x or shape[0] != filters or \
                shape[2:] != (rows, cols) or bias_shape[1] != filters:
            raise ValueError("unexpected convolution")
        size = int(np.prod(shape))
        # dlib stores (filters, k, rows, cols); _conv wants one column per filter in (row, col, k) order
        weights = params[:size].reshape(shape).transpose(2, 3, 1, 0).reshape(-1, filters).copy()
        return _Conv(weights=weights, bias=params[size:size + filters].copy(), size=rows, stride=stride_y,
                     padding=pad_y)
    if name == b"affine_":
        params = r.tensor().ravel()
        channels = r.alias()[1]
        r.alias()
        if params.size != 2 * channels:
            raise ValueError("unexpected affine layer")
        return _Affine(gamma=params[:channels].copy(), beta=params[channels:].copy())
    if name in (b"max_pool_2", b"avg_pool_2"):
        window = (r.int(), r.int(), r.int(), r.int(), r.int(), r.int())  # rows, cols, strides, paddings
        if window not in ((3, 3, 2, 2, 0, 0), (2, 2, 2, 2, 0, 0), (0, 0, 1, 1, 0, 0)):
            raise ValueError(f"unexpected pooling {window}")
        return window
    if name == b"fc_2":
        outputs, inputs = r.int(), r.int()
        weights = r.tensor()
        if weights.shape[:2] != (inputs, outputs):
            raise ValueError("unexpected fully connected layer")
        return weights.reshape(inputs, outputs)
    return None  # relu_, add_prev_: nothing to read


# --- the operations, on (rows, cols, channels) float32 arrays ------------------------------------

def _conv(x: np.ndarray, conv: _Conv) -> np.ndarray:
    if conv.padding:
        p = conv.padding
        x = np.pad(x, ((p, p), (p, p), (0, 0)))
    size, stride = conv.size, conv.stride
    rows, cols = (x.shape[0] - size) // stride + 1, (x.shape[1] - size) // stride + 1
    # im2col in (row, col, channel) order, channels innermost: each shifted view is copied
    # in runs of whole pixels, ~4x faster than numpy's gather in dlib's (channel, row, col) order.
    patches = np.concatenate([x[i:i + stride * (rows - 1) + 1:stride, j:j + stride * (cols - 1) + 1:stride]
                              for i in range(size) for j in range(size)], axis=2)
    out = patches.reshape(rows * cols, -1) @ conv.weights
    out += conv.bias
    return out.reshape(rows, cols, -1)


def _affine(x: np.ndarray, affine: _Affine) -> np.ndarray:
    x *= affine.gamma
    x += affine.beta
    return x


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


def _max_pool_3x3_2(x: np.ndarray) -> np.ndarray:
    return sliding_window_view(x, (3, 3), axis=(0, 1))[::2, ::2].max(axis=(3, 4))


def _avg_pool_2x2_2(x: np.ndarray) -> np.ndarray:
    rows, cols = (x.shape[0] - 2) // 2 + 1, (x.shape[1] - 2) // 2 + 1
    x = x[:2 * rows, :2 * cols]
    return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) * np.float32(0.25)


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dlib's add_prev: the larger of both shapes, each input counting as zero outside itself."""
    if a.shape == b.shape:
        return a + b
    out = np.zeros(tuple(max(s, t) for s, t in zip(a.shape, b.shape)), dtype=np.float32)
    out[:a.shape[0], :a.shape[1], :a.shape[2]] += a
    out[:b.shape[0], :b.shape[1], :b.shape[2]] += b
    return out
