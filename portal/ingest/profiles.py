"""A partner's saved mapping profiles: the newest version of each, the one that fits a file, a new version.
The profile format itself is portal.ingest.mapping; every save is audited with before and after."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.core import audit
from portal.extensions import db
from portal.ingest.mapping import MappingProfile
from portal.models import (
    MappingProfileVersion,
    Partner,
    User,
)


def latest_profiles(partner_id: int) -> list[MappingProfileVersion]:
    """The newest version of each of the partner's named profiles, most recently saved first."""
    newest = (
        select(MappingProfileVersion.name, func.max(MappingProfileVersion.version).label("version"))
        .where(MappingProfileVersion.partner_id == partner_id)
        .group_by(MappingProfileVersion.name)
        .subquery()
    )
    return list(
        db.session.scalars(
            select(MappingProfileVersion)
            .join(
                newest,
                (MappingProfileVersion.name == newest.c.name)
                & (MappingProfileVersion.version == newest.c.version),
            )
            .where(MappingProfileVersion.partner_id == partner_id)
            .order_by(MappingProfileVersion.created_at.desc(), MappingProfileVersion.id.desc())
        )
    )


def choose_profile(partner_id: int, headers: list[str]) -> MappingProfileVersion | None:
    for version in latest_profiles(partner_id):
        if MappingProfile.from_json_dict(version.profile).covers(headers):
            return version
    return None


def save_mapping(
    partner: Partner, data: dict, *, name: str = "default", user: User | None = None
) -> MappingProfileVersion:
    """Validate and save a new version of the partner's profile `name`; raises MappingError.

    The audit event keeps the previous and the new profile, so a change can be read as a diff.
    """
    profile = MappingProfile.from_json_dict(data)
    name = (name or "default").strip()[:64] or "default"
    previous = db.session.scalar(
        select(MappingProfileVersion)
        .where(MappingProfileVersion.partner_id == partner.id, MappingProfileVersion.name == name)
        .order_by(MappingProfileVersion.version.desc())
        .limit(1)
    )
    version = MappingProfileVersion(
        partner_id=partner.id,
        name=name,
        version=(previous.version + 1) if previous else 1,
        profile=profile.to_json_dict(),
        created_by_id=user.id if user else None,
    )
    db.session.add(version)
    db.session.flush()
    audit.record(
        "mapping.saved",
        subject=version,
        subject_type="MappingProfile",
        partner_id=partner.id,
        actor=user,
        details={
            "name": name,
            "version": version.version,
            "before": previous.profile if previous else None,
            "after": version.profile,
        },
    )
    return version
