"""The two documents the secretariat keeps: the directory (who exists) and the edition (what the contest asks).

A façade over the modules that hold them, so ``from shared.documents import …`` keeps working:
``shared.dates`` (the deadline rule, effective dating, durations, Vietnamese dates), ``shared.directory``
(units, unions, people, selectors, the directory's consistency and lineage), ``shared.edition`` (parts,
councils, rubrics, reward rules, the cross-check, procedure codes) and ``shared.document_io`` (YAML/JSON
files and the JSON Schemas). Nothing here imports a web framework, a database or a broker.

Run ``python -m shared.documents [DIR]`` to (re)write the JSON Schemas of both documents.
"""

from __future__ import annotations

import sys

from shared.dates import (
    DEFAULT_TIMEZONE,
    VN_TZ,
    Deadline,
    IsoDuration,
    deadline_instant,
    deadline_label_en,
    deadline_label_vi,
    format_date_vn,
    format_datetime_vn,
    last_day_vn,
    parse_duration,
    time_left_en,
    time_left_vi,
)
from shared.directory import (
    ROLE_TITLES_VI,
    UNIT_KIND_TITLES_VI,
    Code,
    Directory,
    DirectoryInconsistent,
    DirectoryProblem,
    Email,
    Id,
    PeopleSelector,
    Person,
    Role,
    Union,
    UnionKind,
    Unit,
    UnitKind,
    UnitSelector,
    _Doc,
    _EffectiveDated,
    directory_problems,
    unit_lineage,
)
from shared.document_io import (
    JSON_SCHEMA_DIALECT,
    SCHEMA_DIR,
    document_schemas,
    dump_yaml,
    load_directory,
    load_document_data,
    load_edition,
    write_document_schemas,
)
from shared.edition import (
    Assignees,
    Attachments,
    CampaignTargets,
    Council,
    Criterion,
    Deduct,
    Disagreement,
    Edition,
    ExperienceReportPart,
    InitiativePart,
    MobilisationLists,
    OnlineServicesCampaignPart,
    Part,
    Rewards,
    Rubric,
    RubricLevel,
    SelectionPart,
    _PartBase,
    check_edition_against_directory,
    national_procedure_code,
)

__all__ = [
    "DEFAULT_TIMEZONE",
    "JSON_SCHEMA_DIALECT",
    "ROLE_TITLES_VI",
    "SCHEMA_DIR",
    "UNIT_KIND_TITLES_VI",
    "VN_TZ",
    "Assignees",
    "Attachments",
    "CampaignTargets",
    "Code",
    "Council",
    "Criterion",
    "Deadline",
    "Deduct",
    "Directory",
    "DirectoryInconsistent",
    "DirectoryProblem",
    "Disagreement",
    "Edition",
    "Email",
    "ExperienceReportPart",
    "Id",
    "InitiativePart",
    "IsoDuration",
    "MobilisationLists",
    "OnlineServicesCampaignPart",
    "Part",
    "PeopleSelector",
    "Person",
    "Rewards",
    "Role",
    "Rubric",
    "RubricLevel",
    "SelectionPart",
    "Union",
    "UnionKind",
    "Unit",
    "UnitKind",
    "UnitSelector",
    "_Doc",
    "_EffectiveDated",
    "_PartBase",
    "check_edition_against_directory",
    "deadline_instant",
    "deadline_label_en",
    "deadline_label_vi",
    "directory_problems",
    "document_schemas",
    "dump_yaml",
    "format_date_vn",
    "format_datetime_vn",
    "last_day_vn",
    "load_directory",
    "load_document_data",
    "load_edition",
    "national_procedure_code",
    "parse_duration",
    "time_left_en",
    "time_left_vi",
    "unit_lineage",
    "write_document_schemas",
]


if __name__ == "__main__":  # python -m shared.documents [DIR]
    for written_path in write_document_schemas(sys.argv[1] if len(sys.argv) > 1 else SCHEMA_DIR):
        print(written_path)
