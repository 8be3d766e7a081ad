"""The registry's tables (SQLAlchemy 2 declarative). Times are unix seconds (float) so that a
lease compares the same way on SQLite and PostgreSQL; JSON documents are stored as text.

Invariants the database itself keeps: one analysis per name; one version per (analysis,
version) and its bundle digest never changes (rows are never updated except `yanked*`); one
point per (campaign, name); one result per point (`results.point_id` unique), so no result can
be stored twice whatever the workers do.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SHA = 64


class Base(DeclarativeBase):
    pass


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)  # the principal it acts as
    name: Mapped[str] = mapped_column(String(200), default="")  # a note: what it is for
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated: read publish campaign admin
    hash: Mapped[str] = mapped_column(String(SHA), unique=True)  # sha256 of the secret
    prefix: Mapped[str] = mapped_column(String(20))  # the token's first characters, for listings
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Analysis(Base):
    __tablename__ = "analyses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    owner: Mapped[str] = mapped_column(String(100))
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)
    versions: Mapped[list[Version]] = relationship(back_populates="analysis",
                                                   order_by="Version.id")


class Version(Base):
    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("analysis_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    analysis_id: Mapped[int] = mapped_column(ForeignKey("analyses.id"), index=True)
    version: Mapped[str] = mapped_column(String(100))
    bundle_sha256: Mapped[str] = mapped_column(String(SHA), index=True)
    bundle_size: Mapped[int] = mapped_column(BigInteger)
    identifier: Mapped[str] = mapped_column(String(200), default="")  # the crate's content id
    title: Mapped[str] = mapped_column(Text, default="")
    metadata_json: Mapped[str] = mapped_column(Text)  # schemas.VersionMetadata as JSON
    publisher: Mapped[str] = mapped_column(String(100))
    published_at: Mapped[float] = mapped_column(Float)
    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    yanked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    yank_reason: Mapped[str] = mapped_column(Text, default="")
    analysis: Mapped[Analysis] = relationship(back_populates="versions")


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    submitter: Mapped[str] = mapped_column(String(100))
    campaign_text: Mapped[str] = mapped_column(Text)  # the campaign file as submitted
    campaign_json: Mapped[str] = mapped_column(Text)  # the validated campaign (model_dump)
    files_json: Mapped[str] = mapped_column(Text)  # {relative path: sha256} of uploaded files
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued running done failed
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    plot_sha256: Mapped[str | None] = mapped_column(String(SHA), nullable=True)  # blob, PNG
    plot_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)  # brazil | contour
    version: Mapped[Version] = relationship()
    points: Mapped[list[Point]] = relationship(back_populates="campaign",
                                               order_by="Point.position")


class Point(Base):
    __tablename__ = "points"
    __table_args__ = (UniqueConstraint("campaign_id", "name"),
                      Index("ix_points_claim", "status", "lease_expires"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    labels_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued running done failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # leases taken
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    digest: Mapped[str | None] = mapped_column(String(SHA), nullable=True)  # the point's digest
    error: Mapped[str] = mapped_column(Text, default="")
    campaign: Mapped[Campaign] = relationship(back_populates="points")


class Result(Base):
    __tablename__ = "results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    point_id: Mapped[int] = mapped_column(ForeignKey("points.id"), unique=True)
    record_json: Mapped[str] = mapped_column(Text)  # the limit record with provenance and timing
    worker: Mapped[str] = mapped_column(String(200))
    stored_at: Mapped[float] = mapped_column(Float)
