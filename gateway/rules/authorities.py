"""A2.1: the competent authorities named by the agreement, with their official names.

Used as defaults when an operator registers one of them; an authority renamed later
(A2.2) gets its new name through a new directory version, and old envelopes keep
verifying under the old one.
"""

from __future__ import annotations

KNOWN_AUTHORITIES: dict[str, tuple[str, str]] = {
    "KZ-MVD": ("Министерство внутренних дел Республики Казахстан",
               "Ministry of Internal Affairs of the Republic of Kazakhstan"),
    "KZ-MLSP": ("Министерство труда и социальной защиты населения Республики Казахстан",
                "Ministry of Labour and Social Protection of the Population of the Republic "
                "of Kazakhstan"),
    "BY-MVD": ("Министерство внутренних дел Республики Беларусь",
               "Ministry of Internal Affairs of the Republic of Belarus"),
    "BY-GPK": ("Государственный пограничный комитет Республики Беларусь",
               "State Border Committee of the Republic of Belarus"),
}
