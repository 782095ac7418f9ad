"""rewards' tables: the backbone, its copy of the directory and editions, the rules it accepted, and the
participation ledger with the standings it produces.

Projections (``ledger``, ``standings``) belong to a *generation*: the live one the API reads, and during a
rebuild a fresh one filled from the stream's start with its own inbox (``inbox.purpose = rebuild-<id>``), swapped
in when complete. Generation 0 is the first live one, whose inbox is the live consumer's (``facts``).
"""

from __future__ import annotations

import sqlalchemy as sa

from shared.copies import copy_tables
from shared.db import UtcDateTime, backbone_tables

metadata = sa.MetaData()
backbone = backbone_tables(metadata)
copies = copy_tables(metadata)

# One row per subject (submission or assignment) the consumer has seen: the folded state, and the row every
# handler of that subject upserts first, so two processes folding the same subject at once take turns (on
# PostgreSQL the upsert holds the row lock; the second fold then sees the first one's facts).
submission_states = sa.Table(
    "submission_states",
    metadata,
    sa.Column("submission_id", sa.String(100), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=True),
    sa.Column("state", sa.String(20), nullable=False),  # pending | active | withdrawn | rejected | assignment
    sa.Column("facts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    # How many of the subject's facts its marks and totals were last folded from. Only this release writes it,
    # in the same update as ``facts``: a subject the previous release folded during a rolling update (it keeps
    # the ledger, not the read model), or one upgraded from it, has NULL or fewer here, and the standings job
    # folds it again (``Projection.fold_unfolded``). Dropped with its index once no release before this runs.
    sa.Column("folded_facts", sa.Integer, nullable=True),
    # Likewise for the subject's versions (``subject_versions``): written only since they exist, in the same
    # update; NULL or fewer than ``facts``: folded by a release without them (the standings job folds it again,
    # and until then "as of" reads of its edition are folded from the facts).
    sa.Column("versioned_facts", sa.Integer, nullable=True),
)
_UNFOLDED = sa.or_(
    submission_states.c.folded_facts.is_(None), submission_states.c.folded_facts != submission_states.c.facts
)
sa.Index(
    "ix_submission_states_unfolded",
    submission_states.c.submission_id,
    postgresql_where=_UNFOLDED,
    sqlite_where=_UNFOLDED,
)
UNVERSIONED = sa.or_(
    submission_states.c.versioned_facts.is_(None),
    submission_states.c.versioned_facts != submission_states.c.facts,
)
sa.Index(
    "ix_submission_states_unversioned",
    submission_states.c.tenant,
    submission_states.c.edition,
    postgresql_where=UNVERSIONED,
    sqlite_where=UNVERSIONED,
)
UNFOLDED = sa.or_(_UNFOLDED, UNVERSIONED)

# The participation ledger (sổ ghi nhận tham gia) in force: the entries the kept facts earn now, per subject
# (``submission_id`` holds the subject: a submission, or an assignment for misses, fulfilments and the 90-day
# campaign). One achievement is one entry: revisions never add one; a withdrawal or a rejection removes it.
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True, server_default="0"),
    sa.Column("submission_id", sa.String(100), primary_key=True),
    sa.Column("participant_kind", sa.String(10), primary_key=True),  # person | unit
    sa.Column("participant_id", sa.String(100), primary_key=True),
    sa.Column("rule", sa.String(200), primary_key=True),  # e.g. submission.received/experience
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("part", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),  # submission kind or part kind
    sa.Column("event_id", sa.String(36), nullable=False),  # the fact that earned it
    sa.Column("points", sa.Float, nullable=False),
    sa.Column("time", UtcDateTime(), nullable=False),  # business time of the fact
    sa.Column("reason_vi", sa.Text, nullable=False),
    sa.Column("reason_en", sa.Text, nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Index("ix_ledger_edition", "generation", "tenant", "edition", "participant_kind", "time"),
)

# The ledger's journal: append-only. Every change to the entries in force appends a credit (an entry appears)
# or a reversal (it is taken back: withdrawal, ineligibility ruling, re-pricing), naming the fact that caused it.
ledger_journal = sa.Table(
    "ledger_journal",
    metadata,
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(100), nullable=False),
    sa.Column("participant_kind", sa.String(10), nullable=False),
    sa.Column("participant_id", sa.String(100), nullable=False),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),  # the fact that earned the entry
    sa.Column("cause_event_id", sa.String(36), nullable=True),  # the fact whose arrival changed it
    sa.Column("action", sa.String(10), nullable=False),  # credit | reversal
    sa.Column("points", sa.Float, nullable=False),  # signed: a reversal is negative
    sa.Column("time", UtcDateTime(), nullable=False),  # business time of the earning fact
    sa.Column("reason_vi", sa.Text, nullable=False),
    sa.Column("reason_en", sa.Text, nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Index("ix_ledger_journal_participant", "generation", "tenant", "participant_kind", "participant_id"),
)

# Projection generations: one live (status "active"); a rebuild adds one "building", swaps it in, retires the old.
generations = sa.Table(
    "generations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("purpose", sa.String(100), nullable=False),  # its inbox
    sa.Column("status", sa.String(12), nullable=False),  # active | building | retired | abandoned
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("completed_at", UtcDateTime(), nullable=True),
    sa.Column("facts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rules_versions", sa.Text, nullable=False, server_default="{}"),  # {"tenant/edition": version}
)

# Every rules version received with edition.published, valid or refused (a refused one never applies).
rules = sa.Table(
    "rules",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),  # the edition document version
    sa.Column("rules_version", sa.Integer, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),  # the rewards section, JSON
    sa.Column("valid", sa.Boolean, nullable=False),
    sa.Column("errors", sa.Text, nullable=False, server_default="[]"),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("published_at", UtcDateTime(), nullable=False),
)

# The list last told to others (reward.priority.changed), per generation and participant. No longer written
# (issue 16: ``totals`` holds what was told); kept until a later release contracts it.
standings = sa.Table(
    "standings",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("participant_kind", sa.String(10), primary_key=True),
    sa.Column("participant_id", sa.String(100), primary_key=True),
    sa.Column("rank", sa.Integer, nullable=True),  # None: no longer on the list
    sa.Column("points", sa.Float, nullable=False),
    sa.Column("eligibility", sa.Text, nullable=False),  # JSON list of title keys
    sa.Column("digest", sa.String(32), nullable=True),
    sa.Column("changes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rules_version", sa.Integer, nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# Editions whose standings must be recomputed. No longer written (issue 16: standings are kept per fact, in
# ``totals``); kept until a later release contracts it.
dirty = sa.Table(
    "dirty_editions",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("since", UtcDateTime(), primary_key=True),
)

# Re-pricings under new rules still under way (one per generation and edition): written with the rules in the
# consumer's transaction, advanced chunk by chunk (``cursor``: the last subject re-folded), deleted when done. A
# crash leaves the row; the standings job resumes it.
refolds = sa.Table(
    "refolds",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("cause_event_id", sa.String(36), nullable=True),
    sa.Column("cursor", sa.String(200), nullable=False, server_default=""),
    sa.Column("touched_at", UtcDateTime(), nullable=False),
)

# The incremental read model (issue 16), per generation, maintained in the consumer's transaction for the
# participants a changed subject touches — never by re-folding every fact.
#
# ``marks``: what each subject says of a participant beyond points (evidence for a title, a standing miss),
# replaced with the subject's ledger entries.
marks = sa.Table(
    "marks",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("subject", sa.String(100), primary_key=True),
    sa.Column("participant_kind", sa.String(10), primary_key=True),
    sa.Column("participant_id", sa.String(100), primary_key=True),
    sa.Column(
        "mark", sa.String(40), primary_key=True
    ),  # author_of_selected | fulfilled_any | unit_assignment | missed
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Index("ix_marks_participant", "generation", "tenant", "edition", "participant_kind", "participant_id"),
)

# ``totals``: one row per participant on the list (an entry that counts, a title or a miss): the points that
# count, the tie-break keys and the eligibility. The database ranks them (``RANK() OVER`` in the rules' order,
# ``ix_totals_rank``); ``changes`` counts the eligibility changes told (``reward.priority.changed``).
totals = sa.Table(
    "totals",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("participant_kind", sa.String(10), primary_key=True),
    sa.Column("participant_id", sa.String(100), primary_key=True),
    sa.Column("points", sa.Float, nullable=False),
    sa.Column(
        "first_at", UtcDateTime(), nullable=False
    ),  # first rewarding entry that counts (far future: none)
    sa.Column("misses", sa.Integer, nullable=False),
    sa.Column(
        "entries", sa.Integer, nullable=False
    ),  # entries that count; -1: a row just locked, not yet folded
    sa.Column(
        "eligibility", sa.Text, nullable=False
    ),  # JSON: [{key, title_vi, title_en, reasons: [[vi, en]]}]
    sa.Column("eligibility_keys", sa.Text, nullable=False),  # sorted title keys, comma-separated
    # JSON: what each rule earned, per part ([[part, rule, count, points]], ``domain.sums_json``), so a page names a
    # unit's reasons in brief without reading its every entry; NULL: written before it was kept (summed on read).
    sa.Column("reason_totals", sa.Text, nullable=True),
    sa.Column("changes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
# What puts a participant on the list (``standings.Total.listed``), written with literals: a statement whose
# condition is exactly this may use the partial index below, on SQLite and in PostgreSQL's generic plans alike.
ON_LIST = sa.or_(
    totals.c.entries > sa.literal_column("0"),
    totals.c.eligibility_keys != sa.literal_column("''"),
    totals.c.misses > sa.literal_column("0"),
)
# The list in rank order, only its participants: a page, the list's size and one participant's rank (those
# ahead of them, a range of this index per tie-break) are read from the index alone, whatever the table holds.
sa.Index(
    "ix_totals_rank",
    totals.c.generation,
    totals.c.tenant,
    totals.c.edition,
    totals.c.participant_kind,
    totals.c.points.desc(),  # the list's order: a page is read in it, not sorted
    totals.c.first_at,
    totals.c.misses,
    totals.c.participant_id,
    totals.c.entries,  # the condition's own columns: the index covers the statements that test it
    totals.c.eligibility_keys,
    sqlite_where=ON_LIST,
    postgresql_where=ON_LIST,
)

# ``subject_versions``: what each subject contributes to the list through business time (``domain.versions``),
# replaced with the subject's entries: from ``valid_from`` (a business time of one of its facts) to ``valid_to``
# (the next one that changed it; far future: still in force). The list "as of" a moment is the versions in force
# then, totalled and ranked — a range read, not a fold of every fact. ``entries`` and ``marks`` are JSON.
subject_versions = sa.Table(
    "subject_versions",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("subject", sa.String(100), primary_key=True),
    sa.Column("valid_from", UtcDateTime(), primary_key=True),
    sa.Column("valid_to", UtcDateTime(), nullable=False),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("entries", sa.Text, nullable=False),
    sa.Column("marks", sa.Text, nullable=False),
    sa.Index("ix_subject_versions_in_force", "generation", "tenant", "edition", "valid_to", "valid_from"),
)

# ``participant_versions``: each participant's standing through business time (points, tie-break keys,
# eligibility) from ``valid_from`` to ``valid_to``, derived from its subjects' versions at the batch's end, so a
# page of the list "as of" a moment is ranked by the database (``RANK() OVER`` of the rows in force then) and
# costs the page. Only listed participants have rows.
participant_versions = sa.Table(
    "participant_versions",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("participant_kind", sa.String(10), primary_key=True),
    sa.Column("participant_id", sa.String(100), primary_key=True),
    sa.Column("valid_from", UtcDateTime(), primary_key=True),
    sa.Column("valid_to", UtcDateTime(), nullable=False),
    sa.Column("points", sa.Float, nullable=False),
    sa.Column("first_at", UtcDateTime(), nullable=False),
    sa.Column("misses", sa.Integer, nullable=False),
    sa.Column("eligibility", sa.Text, nullable=False),  # JSON, as ``totals.eligibility``
    sa.Column("reason_totals", sa.Text, nullable=True),  # JSON, as ``totals.reason_totals``
    sa.Index(
        "ix_participant_versions_in_force",
        "generation",
        "tenant",
        "edition",
        "participant_kind",
        "valid_to",
        "valid_from",
    ),
)

# ``timelines``: per participant, the subjects any of whose versions ever named it (a link outlives the version:
# the versions in force decide), and ``horizon``, the latest instant at which any of them changes. A change at or
# after the horizon only replaces the timeline's tail with the standing now; an earlier one (a fact that arrived
# late, new rules) derives the participant's timeline again from its subjects' versions.
timelines = sa.Table(
    "timelines",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("participant_kind", sa.String(10), primary_key=True),
    sa.Column("participant_id", sa.String(100), primary_key=True),
    sa.Column("horizon", UtcDateTime(), nullable=False),
)
timeline_subjects = sa.Table(
    "timeline_subjects",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("participant_kind", sa.String(10), primary_key=True),
    sa.Column("participant_id", sa.String(100), primary_key=True),
    sa.Column("subject", sa.String(100), primary_key=True),
)

# A participant's entries, for its total (the primary key leads with the subject).
ledger_participant_index = sa.Index(
    "ix_ledger_participant",
    ledger.c.generation,
    ledger.c.tenant,
    ledger.c.edition,
    ledger.c.participant_kind,
    ledger.c.participant_id,
)
