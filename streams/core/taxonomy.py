"""The behavioural categories: the one place that defines their codes, names and order.

Every other module imports the codes from here, so counts, probabilities and
confusion matrices always use the same order.

>>> [c.code for c in DEFAULT_TAXONOMY.categories]
['g1', 'g2', 'g3', 'g4', 'g5']
>>> DEFAULT_TAXONOMY.resolve("helpful_misaligned")
'g2'
>>> THREE_CLASS_TAXONOMY.codes
('helpful', 'refusal', 'off_topic')
>>> load_taxonomy("three-class").relabel("g4")
'refusal'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Category:
    """One behavioural category: a short code, a name, what it means, and what a rise in its share means."""

    code: str
    name: str
    description: str
    rise: str = ""  # e.g. "toward harmful compliance": the direction a drift alert names when this share grows

    @property
    def direction(self) -> str:
        return self.rise or f"toward {self.name.replace('_', ' ')}"


@dataclass(frozen=True)
class Taxonomy:
    """An ordered list of categories; the order is the column order of every probability vector."""

    name: str
    categories: tuple[Category, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.categories)

    @property
    def size(self) -> int:
        return len(self.categories)

    def index(self, code: str) -> int:
        """Return the column of a category code (or name alias)."""
        return self.codes.index(self.resolve(code))

    def resolve(self, label: str) -> str:
        """Return the code for a code or a category name; raise ValueError naming the choices."""
        for c in self.categories:
            if label == c.code or label == c.name:
                return c.code
        choices = ", ".join(f"{c.code} ({c.name})" for c in self.categories)
        raise ValueError(f"unknown category {label!r} for taxonomy {self.name!r}; use one of: {choices}")

    def relabel(self, label: str) -> str:
        """Return the code for a label of this taxonomy, or of the five-class one collapsed onto it."""
        if self.name == "three-class" and label in FIVE_TO_THREE:
            return FIVE_TO_THREE[label]
        if self.name == "three-class" and label in DEFAULT_NAMES:
            return FIVE_TO_THREE[DEFAULT_NAMES[label]]
        return self.resolve(label)


DEFAULT_TAXONOMY = Taxonomy(
    name="five-class",
    categories=(
        Category("g1", "helpful_aligned", "complies with a benign request", "toward aligned behaviour"),
        Category("g2", "helpful_misaligned", "complies with a harmful request", "toward harmful compliance"),
        Category("g3", "refusal_aligned", "refuses a harmful request", "toward aligned behaviour"),
        Category("g4", "refusal_misaligned", "refuses a benign request (over-refusal)", "toward over-refusal"),
        Category("g5", "off_topic", "answers something other than what was asked", "toward off-topic"),
    ),
)

# The method's coarser variant (96.8% accuracy reported with 3 classes).
THREE_CLASS_TAXONOMY = Taxonomy(
    name="three-class",
    categories=(
        Category("helpful", "helpful", "complies with the request", "toward compliance"),
        Category("refusal", "refusal", "refuses the request", "toward refusal"),
        Category("off_topic", "off_topic", "answers something else", "toward off-topic"),
    ),
)

# How the five categories collapse onto the three-class variant.
FIVE_TO_THREE = {"g1": "helpful", "g2": "helpful", "g3": "refusal", "g4": "refusal", "g5": "off_topic"}

CATEGORY_CODES: tuple[str, ...] = DEFAULT_TAXONOMY.codes

DEFAULT_NAMES = {c.name: c.code for c in DEFAULT_TAXONOMY.categories}
TAXONOMIES = {t.name: t for t in (DEFAULT_TAXONOMY, THREE_CLASS_TAXONOMY)}


def categories_for(codes: tuple[str, ...]) -> tuple[Category, ...]:
    """The categories of the known taxonomy with these codes, else bare ones named by their codes.

    >>> categories_for(("g1", "g2", "g3", "g4", "g5"))[1].direction
    'toward harmful compliance'
    >>> categories_for(("a", "b"))[0].direction
    'toward a'
    """
    for t in TAXONOMIES.values():
        if t.codes == tuple(codes):
            return t.categories
    return tuple(Category(c, c, "") for c in codes)


def load_taxonomy(spec: str) -> Taxonomy:
    """Return ``five-class``, ``three-class``, or a custom taxonomy from a JSON file
    (``{"name": ..., "categories": [{"code", "name", "description", "rise"}, ...]}``; ``rise`` is what a growing
    share of that category means, e.g. "toward harmful compliance")."""
    if spec in TAXONOMIES:
        return TAXONOMIES[spec]
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"taxonomy {spec!r}: use five-class, three-class or a JSON file of categories")
    try:
        d = json.loads(path.read_text())
        cats = tuple(Category(c["code"], c.get("name", c["code"]), c.get("description", ""), c.get("rise", ""))
                     for c in d["categories"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a taxonomy file ({err}); expected "
                         '{"name": ..., "categories": [{"code": ..., "name": ...}, ...]}') from None
    if len(cats) < 2 or len({c.code for c in cats}) != len(cats):
        raise ValueError(f"{path}: a taxonomy needs at least two categories with distinct codes")
    return Taxonomy(d.get("name", path.stem), cats)
