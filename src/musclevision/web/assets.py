"""Set-up step: build the pose ``.task`` bundles and copy the page's pinned npm files into ``assets/``.

Everything the page loads is served from our own origin (no CDN, no telemetry), copied from
the exact versions pinned in package.json/package-lock.json. Run by ``make setup``.
"""

from __future__ import annotations

import shutil

from musclevision.extract.pose_bundle import VARIANTS, ensure_bundle
from musclevision.paths import assets_dir, project_root

# (npm package folder, files to copy) -> served under /vendor/<package>/
VENDOR_FILES = {
    "@mediapipe/tasks-vision": [
        "vision_bundle.mjs",
        "wasm/vision_wasm_internal.js",
        "wasm/vision_wasm_internal.wasm",
        "wasm/vision_wasm_nosimd_internal.js",
        "wasm/vision_wasm_nosimd_internal.wasm",
    ],
    "onnxruntime-web": [
        "dist/ort.wasm.min.mjs",
        "dist/ort-wasm-simd-threaded.mjs",
        "dist/ort-wasm-simd-threaded.wasm",
    ],
}


def vendor_dir():
    return assets_dir() / "web" / "vendor"


def copy_vendor_files() -> None:
    node_modules = project_root() / "node_modules"
    for package, files in VENDOR_FILES.items():
        for name in files:
            source = node_modules / package / name
            if not source.is_file():
                raise FileNotFoundError(f"{source} is missing; run `npm ci` (make setup) in {project_root()}")
            target = vendor_dir() / package.split("/")[-1] / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def main() -> None:
    for variant in VARIANTS:
        print(f"pose bundle  {ensure_bundle(variant)}")
    copy_vendor_files()
    print(f"page vendor  {vendor_dir()}")


if __name__ == "__main__":
    main()
