"""HTML + CSV -> PDF/A-3b bytes with WeasyPrint, and the entry point of the rendering child process.

Imports nothing from the app (no Flask, no database), so the sandbox's child starts fast and small:
`python -I pdfa.py <workdir>` reads input.html and input.csv and writes output.pdf there.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import resource
import sys
import time
from pathlib import Path

PDF_VARIANT = "pdf/a-3b"
EXIT_OUT_OF_MEMORY = 3
EXIT_FAILED = 4


def _parse_w3c(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def write_pdfa(html: str, csv_bytes: bytes, *, filename_stem: str) -> bytes:
    """Lay out `html` and write a PDF/A-3b with `csv_bytes` embedded as `<filename_stem>.csv`.

    Deterministic: the dates inside (document and attachment) come from the HTML's dcterms.created,
    and the file identifier is a hash of the content, so the same input gives the same bytes.
    """
    import weasyprint

    document = weasyprint.HTML(string=html).render(pdf_variant=PDF_VARIANT)
    stamp = _parse_w3c(document.metadata.created)
    attachment = weasyprint.Attachment(
        file_obj=io.BytesIO(csv_bytes),
        name=f"{filename_stem}.csv",
        description=f"Line items of {filename_stem} (CSV)",
        created=stamp,
        modified=stamp,
        # PDF/A-3 AFRelationship: the CSV carries the same data as the pages, for machines.
        relationship="Data",
    )
    return document.write_pdf(pdf_variant=PDF_VARIANT, attachments=[attachment])


def main(argv: list[str]) -> int:
    """The child: cap our own address space first, then render; report figures as one JSON line."""
    workdir = Path(argv[1])
    params = json.loads((workdir / "params.json").read_text())
    if params.get("memory_mb"):
        limit = int(params["memory_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    start = time.perf_counter()
    try:
        pdf = write_pdfa(
            (workdir / "input.html").read_text(encoding="utf-8"),
            (workdir / "input.csv").read_bytes(),
            filename_stem=params["filename_stem"],
        )
        (workdir / "output.pdf").write_bytes(pdf)
    except MemoryError:
        sys.stderr.write("out of memory\n")
        return EXIT_OUT_OF_MEMORY
    except Exception as exc:  # reported to the parent, which raises RenderError with it
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return EXIT_FAILED
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": time.perf_counter() - start, "maxrss_kb": usage.ru_maxrss}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
