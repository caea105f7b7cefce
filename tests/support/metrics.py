"""Reading a `/metrics` scrape the way Prometheus does (prometheus_client's own parser)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

# The sample names each family type puts in the exposition.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def samples(text: str, name: str) -> list[Sample]:
    """Every sample called `name`, whatever its labels."""
    return [found for family in text_string_to_metric_families(text)
            for found in family.samples if found.name == name]


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name{labels}` (labels compared as given), or None."""
    for found in samples(text, name):
        if all(found.labels.get(k) == v for k, v in labels.items()):
            return float(found.value)
    return None


def exported_names(text: str) -> set[str]:
    """Every sample name the exposition declares: each family's, also one without samples
    yet (a counter of errors before the first error), and every sample seen."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(found.name for found in family.samples)
    return names
