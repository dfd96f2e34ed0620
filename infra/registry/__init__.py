"""The asset registry: parks, enterprises and assets by effective market day, and enrolment.

Services read a day's portfolio with :func:`portfolio`; scenario YAML files are templates
entered once (:func:`load_template`, or on first use).
"""

from infra.registry.portfolio import RegistryError, ensure_park, load_template, portfolio

__all__ = ["RegistryError", "ensure_park", "load_template", "portfolio"]
