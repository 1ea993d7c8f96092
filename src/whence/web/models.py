"""The JSON answers of the explorer's API, as pydantic models (they document ``/openapi.json``)."""

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["RunSummary", "RunDetail", "ObjectInfo", "SourceInfo", "ResultInfo", "Graph", "GraphNode",
           "GraphEdge", "OpDetail", "OpLink", "CellSet", "BackwardAnswer", "ForwardAnswer", "TraceRow",
           "TraceAnswer"]


class RunSummary(BaseModel):
    run: str
    created: str | None = Field(None, description="when the run was saved (ISO 8601)")
    whence_version: str | None = None
    n_nodes: int = Field(description="operations and sources in the run's graph")
    n_objects: int
    n_sources: int


class ObjectInfo(BaseModel):
    name: str
    node: int = Field(description="the graph node that produced the object")
    kind: str = Field(description="array, frame or series")
    shape: list[int]
    columns: list[str] | None = Field(None, description="column labels of a frame")
    completeness: str = Field(description="FULL, or PARTIAL when an operation upstream is PARTIAL")
    sources: list[str]
    n_ops: int


class SourceInfo(BaseModel):
    name: str
    node: int
    kind: str = Field(description="table (read from a file or a frame) or array")
    shape: list[int]
    columns: list[str] | None = None
    path: str | None = None
    format: str | None = None
    n_rows: int | None = None
    sha256: str | None = None
    note: str | None = None


class ResultInfo(BaseModel):
    name: str
    kind: str = Field(description="attribution, unlearning, ...")


class RunDetail(BaseModel):
    run: str
    store: str
    objects: list[ObjectInfo]
    sources: list[SourceInfo]
    results: list[ResultInfo]


class GraphNode(BaseModel):
    id: int
    op: str
    label: str
    shape: list[int]
    source: str | None = Field(None, description="the source's name, for sources")
    completeness: str
    reason: str | None = None
    internal: bool
    detail: str
    map_kind: str | None = None
    parents: list[int]
    control: list[int] = Field(description="positions in parents that are control inputs")
    objects: list[str] = Field(description="saved objects produced by this node")


_COMPOSED = ("an input of a table operation's composed relation (straight to a source) rather than a frame "
             "the operation was computed from")


class GraphEdge(BaseModel):
    child: int
    parent: int
    position: int = Field(description="the input's position among the child's inputs")
    control: bool = Field(description="a control input: mask, condition, index array, key")
    composed: bool = Field(False, description=_COMPOSED)


class Graph(BaseModel):
    run: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class OpLink(BaseModel):
    node: int
    label: str
    op: str
    shape: list[int]
    position: int = Field(description="the input position (of the child, for outputs)")
    control: bool
    composed: bool = Field(False, description=_COMPOSED)


class OpDetail(BaseModel):
    run: str
    node: GraphNode
    inputs: list[OpLink]
    outputs: list[OpLink]
    lineage_nbytes: int
    map: dict[str, Any] | None = Field(None, description="the map's parameters (index arrays as references)")
    upstream_completeness: str = Field(description="FULL unless this node or one upstream is PARTIAL")
    upstream_reasons: list[str]


class CellSet(BaseModel):
    name: str
    kind: str = Field(description="source, array, frame or series")
    shape: list[int]
    columns: list[str] | None = None
    count: int = Field(description="number of cells in the set")
    bbox: list[list[int]] | None = Field(None, description="[low, high] (inclusive) of each axis; null if empty")
    cells: list[list[int]] = Field(description="cells, sorted, at most `limit` of them (inside `window` if given)")
    truncated: bool = Field(description="true when more cells than those listed are in the set (or window)")
    overview: list[list[int]] = Field(description="counts of cells in a coarse grid over the whole array: "
                                      "rows bin the first axis, columns bin the other axes flattened")


class BackwardAnswer(BaseModel):
    run: str
    object: str
    cell: list[int]
    control: bool
    complete: bool
    reasons: list[str]
    sources: list[CellSet]


class ForwardAnswer(BaseModel):
    run: str
    start: str
    cell: list[int]
    control: bool
    targets: list[CellSet]


class TraceRow(BaseModel):
    table: str
    row: int
    path: str | None
    line: int | None
    columns: list[str]


class TraceAnswer(BaseModel):
    run: str
    object: str
    row: int
    complete: bool
    reasons: list[str]
    count: int
    truncated: bool
    sources: list[TraceRow]
