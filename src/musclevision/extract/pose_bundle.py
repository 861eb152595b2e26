"""Build MediaPipe PoseLandmarker ``.task`` bundles offline from the pinned npm ``@mediapipe/pose``.

No pose ``.task`` ships in any package we can install, and nothing may be downloaded at run
time, so we assemble one: the Tasks graph wants an *uncompressed* zip holding
``pose_detector.tflite`` and ``pose_landmarks_detector.tflite``, each carrying TFLite
image-input metadata (colour space + normalization) that the npm files lack. The same bundle
feeds the Python extractor and the browser page, so training and live keypoints come from
one model. Source files are checked against pinned hashes so the bundle hash (recorded by the
keypoint cache and the exported model card) is reproducible.

Usage: ``python -m musclevision.extract.pose_bundle [--variant full ...]`` (``make setup`` runs it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import flatbuffers

from musclevision.paths import assets_dir, project_root, sha256_file

NPM_PACKAGE = "@mediapipe/pose"
NPM_VERSION = "0.5.1675469404"
VARIANTS = ("lite", "full", "heavy")

# sha256 of the source files inside @mediapipe/pose@0.5.1675469404.
DETECTOR_FILE = "pose_solution_packed_assets.data"  # byte-for-byte the raw pose_detection.tflite
SOURCE_SHA256 = {
    DETECTOR_FILE: "a63c614bef30d35947f13be361820b1e4e3bec9cfeebf4d11216a18373108e85",
    "pose_landmark_lite.tflite": "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61",
    "pose_landmark_full.tflite": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    "pose_landmark_heavy.tflite": "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe",
}
# Input normalization the two graphs expect: detector in [-1, 1], landmark model in [0, 1].
DETECTOR_NORM = (127.5, 127.5)
LANDMARK_NORM = (0.0, 255.0)


class BundleError(RuntimeError):
    pass


def npm_package_dir() -> Path:
    return project_root() / "node_modules" / "@mediapipe" / "pose"


def bundle_path(variant: str) -> Path:
    return assets_dir() / "pose" / f"pose_landmarker_{variant}.task"


def _read_source(name: str) -> bytes:
    path = npm_package_dir() / name
    if not path.is_file():
        raise BundleError(
            f"{path} is missing: the pose model sources come from the pinned npm package "
            f"{NPM_PACKAGE}@{NPM_VERSION}; run `make setup` (or `npm ci`) in {project_root()}"
        )
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != SOURCE_SHA256[name]:
        raise BundleError(
            f"{path} does not match the pinned {NPM_PACKAGE}@{NPM_VERSION} file (sha256 differs); reinstall it with `npm ci`"
        )
    return data


def add_image_metadata(model: bytes, mean: float, std: float, name: str) -> bytes:
    """Return ``model`` with TFLite metadata declaring an RGB image input normalized by mean/std."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as meta
    from mediapipe.tasks.metadata import schema_py_generated as schema

    tflite = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    graph = tflite.subgraphs[0]

    image = meta.TensorMetadataT()
    image.name = "image"
    image.content = meta.ContentT()
    image.content.contentPropertiesType = meta.ContentProperties.ImageProperties
    image.content.contentProperties = meta.ImagePropertiesT()
    image.content.contentProperties.colorSpace = meta.ColorSpaceType.RGB
    norm = meta.ProcessUnitT()
    norm.optionsType = meta.ProcessUnitOptions.NormalizationOptions
    norm.options = meta.NormalizationOptionsT()
    norm.options.mean, norm.options.std = [mean], [std]
    image.processUnits = [norm]
    image.stats = meta.StatsT()
    image.stats.min, image.stats.max = [(0.0 - mean) / std], [(255.0 - mean) / std]

    outputs = []
    for index in graph.outputs:
        out = meta.TensorMetadataT()
        out.name = graph.tensors[index].name.decode() if graph.tensors[index].name else None
        outputs.append(out)

    sub = meta.SubGraphMetadataT()
    sub.inputTensorMetadata = [image]
    sub.outputTensorMetadata = outputs
    model_meta = meta.ModelMetadataT()
    model_meta.name = name
    model_meta.description = f"{name} from {NPM_PACKAGE}@{NPM_VERSION}, metadata added by MuscleVision"
    model_meta.subgraphMetadata = [sub]
    builder = flatbuffers.Builder(0)
    builder.Finish(model_meta.Pack(builder), b"M001")

    # The metadata lives in its own buffer, referenced by a "TFLITE_METADATA" entry.
    buffer = schema.BufferT()
    buffer.data = bytearray(builder.Output())
    tflite.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = "TFLITE_METADATA", len(tflite.buffers) - 1
    tflite.metadata = [m for m in (tflite.metadata or []) if m.name != b"TFLITE_METADATA"] + [entry]

    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(tflite.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def build_bundle(variant: str, out: Path | None = None) -> Path:
    if variant not in VARIANTS:
        raise BundleError(f"unknown pose model variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    out = out or bundle_path(variant)
    detector = add_image_metadata(_read_source(DETECTOR_FILE), *DETECTOR_NORM, "pose_detector")
    landmarks = add_image_metadata(_read_source(f"pose_landmark_{variant}.tflite"), *LANDMARK_NORM, f"pose_landmark_{variant}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".task.tmp")
    os.close(fd)
    try:
        # MediaPipe memory-maps bundle members, so they must be stored, not deflated. A fixed
        # timestamp keeps the zip (and so the bundle hash) byte-identical across builds.
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for member, data in (("pose_detector.tflite", detector), ("pose_landmarks_detector.tflite", landmarks)):
                info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED
                zf.writestr(info, data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def ensure_bundle(variant: str) -> Path:
    """Path to the bundle for ``variant``, building it from the npm sources when missing."""
    path = bundle_path(variant)
    return path if path.is_file() else build_bundle(variant)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("--variant", action="append", choices=VARIANTS, help="default: all three")
    parser.add_argument("--force", action="store_true", help="rebuild even when the bundle exists")
    args = parser.parse_args(argv)
    for variant in args.variant or VARIANTS:
        path = build_bundle(variant) if args.force else ensure_bundle(variant)
        print(f"{path}  sha256={sha256_file(path)[:16]}")


if __name__ == "__main__":
    main()
