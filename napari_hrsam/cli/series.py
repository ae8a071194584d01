"""``hrsam series status``: which images of a series are done (see ``napari_hrsam.io.series``)."""
from __future__ import annotations

from napari_hrsam.io.series import Series


def add_series(commands, parents) -> None:
    parser = commands.add_parser(
        "series", parents=parents[:1], help="a series of images annotated in the widget",
        description="A folder of images annotated one after another in the widget (Open series): "
                    "each image's labels are autosaved in the series' project folder.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    status = actions.add_parser("status", parents=parents[:1], help="which images are done")
    status.add_argument("folder", metavar="DIR", help="the folder of images")
    status.add_argument("--project", metavar="PROJECT", help="the project folder (default DIR/hrsam-project)")
    status.set_defaults(run=run_status)


def run_status(args) -> int:
    series = Series.open(args.folder, args.project, create=False)
    width = max(len(entry.path.name) for entry in series.entries())
    for index, entry in enumerate(series.entries()):
        mark = "done" if entry.done else ("current" if index == series.current else "")
        print(f"{index + 1:4d}  {entry.path.name:<{width}}  {entry.objects:5d} object(s)  {mark}")
    done, total = series.progress
    print(f"{done} of {total} done; project: {series.project}")
    return 0
