"""``hrsam export``: committed objects of saved work as COCO annotations or instance TIFFs."""
from __future__ import annotations

from napari_hrsam.io.export import FORMATS, export


def add_export(commands, parents) -> None:
    parser = commands.add_parser(
        "export", parents=parents[:1], help="export saved objects for training (COCO or TIFF)",
        description="Export the committed objects of saved work (an autosave folder, or a series' "
                    "project folder holding one per image) as COCO instance annotations "
                    "(annotations.json, run-length masks; volumes per slice) or as one instance "
                    "label TIFF per image, with every object's prompts as JSON.")
    parser.add_argument("folder", metavar="DIR", help="autosave folder or series project folder")
    parser.add_argument("--format", choices=FORMATS, default="coco")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="folder to write into")
    parser.set_defaults(run=run_export)


def run_export(args) -> int:
    counts = export(args.folder, args.out, args.format)
    print(f"exported {counts['objects']} object(s) of {counts['images']} image(s)"
          + (f" as {counts['annotations']} COCO annotation(s)" if args.format == "coco" else " as TIFF")
          + f" to {args.out}")
    return 0
