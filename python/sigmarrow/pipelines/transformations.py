"""pySigma transformations that sigmarrow's pipeline files use.

``sigmarrow_field_mapping`` is pySigma's ``field_name_mapping`` with one difference, for
one-to-many mappings. pySigma links the mapped fields with OR, which is right for a value
test (``Image|endswith: x`` holds when ``Image`` or ``NewProcessName`` ends with ``x``) but
wrong for a test of absence: ``Image: null`` (or ``Image|exists: false``) must hold only when
*every* field the name stands for is absent. Otherwise, on a table where a Sysmon row has
``Image`` and no ``NewProcessName``, the common filter ``not Image: null`` would be false for
every row. Here the absence values of a detection item are linked with AND over the mapped
fields; every other value keeps pySigma's OR.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sigma.conditions import ConditionAND, ConditionOR
from sigma.processing import transformations as _registry_module
from sigma.processing.transformations import FieldMappingTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.types import SigmaExists, SigmaNull, SigmaType

__all__ = ["TRANSFORMATION_ID", "AbsenceAwareFieldMappingTransformation", "register"]

#: The ``type`` of the transformation in pipeline YAML files.
TRANSFORMATION_ID = "sigmarrow_field_mapping"


def _is_absence(value: SigmaType) -> bool:
    return isinstance(value, SigmaNull) or (isinstance(value, SigmaExists) and not value.exists)


@dataclass
class AbsenceAwareFieldMappingTransformation(FieldMappingTransformation):
    """Map field names like ``field_name_mapping``; absence tests need all mapped fields absent."""

    def apply_detection_item(
        self, detection_item: SigmaDetectionItem
    ) -> SigmaDetection | SigmaDetectionItem | None:
        field = detection_item.field
        mapping = self.apply_field_name(field)
        absent = [v for v in detection_item.value if _is_absence(v)]
        if (
            not isinstance(mapping, list)
            or len(mapping) < 2
            or not absent
            or (
                self.processing_item is not None
                and not self.processing_item.match_field_name(field)
            )
        ):
            return super().apply_detection_item(detection_item)

        others = [v for v in detection_item.value if not _is_absence(v)]
        absent_all = SigmaDetection(
            [
                dataclasses.replace(detection_item, field=name, value=absent, auto_modifiers=False)
                for name in mapping
            ],
            item_linking=ConditionAND,
        )
        if not others:
            return absent_all
        rest = super().apply_detection_item(
            dataclasses.replace(detection_item, value=others, auto_modifiers=False)
        )
        return SigmaDetection(
            [absent_all, rest if rest is not None else detection_item],
            # `|all` links the values of an item with AND: keep that between the two parts.
            item_linking=detection_item.value_linking
            if detection_item.value_linking is ConditionAND
            else ConditionOR,
        )


def register() -> None:
    """Make ``type: sigmarrow_field_mapping`` known to pySigma's pipeline loader (idempotent).

    pySigma looks transformation types up in the dict ``sigma.processing.transformations.
    transformations`` when it reads a pipeline YAML file; there is no plugin hook for them.
    """
    _registry_module.transformations.setdefault(
        TRANSFORMATION_ID, AbsenceAwareFieldMappingTransformation
    )
