"""The org's schema: objects, fields and rules, loaded from an org YAML on top of the default org.

Everything the emulator validates or describes comes from here. An org YAML may `extends: default`
(the shipped `default_org.yaml`) and add or override objects, fields, rules, clients and users.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from dataclasses import field as dc_field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .permissions import Grant, parse_grants

# Field types and their describe defaults (soapType, default length).
_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "id": {"soapType": "tns:ID", "length": 18},
    "reference": {"soapType": "tns:ID", "length": 18},
    "string": {"soapType": "xsd:string", "length": 255},
    "textarea": {"soapType": "xsd:string", "length": 32000},
    "email": {"soapType": "xsd:string", "length": 80},
    "phone": {"soapType": "xsd:string", "length": 40},
    "url": {"soapType": "xsd:string", "length": 255},
    "picklist": {"soapType": "xsd:string", "length": 255},
    "multipicklist": {"soapType": "xsd:string", "length": 4099},
    "boolean": {"soapType": "xsd:boolean", "length": 0},
    "double": {"soapType": "xsd:double", "length": 0, "precision": 18, "scale": 0},
    "currency": {"soapType": "xsd:double", "length": 0, "precision": 18, "scale": 2},
    "percent": {"soapType": "xsd:double", "length": 0, "precision": 18, "scale": 2},
    "int": {"soapType": "xsd:int", "length": 0, "digits": 9},
    "date": {"soapType": "xsd:date", "length": 0},
    "datetime": {"soapType": "xsd:dateTime", "length": 0},
}
STRING_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "multipicklist"})
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int"})

# Fields every object has; the emulator maintains them itself.
_SYSTEM_FIELDS: dict[str, dict[str, Any]] = {
    "Id": {"type": "id", "label": "Record ID", "createable": False, "updateable": False, "id_lookup": True,
           "nillable": False, "defaulted_on_create": True},
    "IsDeleted": {"type": "boolean", "label": "Deleted", "createable": False, "updateable": False},
    "CreatedDate": {"type": "datetime", "label": "Created Date", "createable": False, "updateable": False,
                    "nillable": False, "defaulted_on_create": True},
    "CreatedById": {"type": "reference", "label": "Created By ID", "reference_to": ["User"],
                    "relationship_name": "CreatedBy", "createable": False, "updateable": False,
                    "nillable": False, "defaulted_on_create": True},
    "LastModifiedDate": {"type": "datetime", "label": "Last Modified Date", "createable": False,
                         "updateable": False, "nillable": False, "defaulted_on_create": True},
    "LastModifiedById": {"type": "reference", "label": "Last Modified By ID", "reference_to": ["User"],
                         "relationship_name": "LastModifiedBy", "createable": False, "updateable": False,
                         "nillable": False, "defaulted_on_create": True},
    "SystemModstamp": {"type": "datetime", "label": "System Modstamp", "createable": False,
                       "updateable": False, "nillable": False, "defaulted_on_create": True},
}
_RECORD_TYPE_FIELD = {"type": "reference", "label": "Record Type ID", "reference_to": ["RecordType"],
                      "relationship_name": "RecordType", "defaulted_on_create": True}
_OWNER_FIELD = {"type": "reference", "label": "Owner ID", "reference_to": ["User"], "relationship_name": "Owner",
                "nillable": False, "defaulted_on_create": True}


@dataclass
class PicklistValue:
    value: str
    label: str
    active: bool = True
    default: bool = False


@dataclass
class FieldDef:
    """One field as describe reports it, plus what the emulator needs to enforce it."""

    name: str
    type: str
    label: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    digits: int = 0
    createable: bool = True
    updateable: bool = True
    filterable: bool = True
    nillable: bool = True
    external_id: bool = False
    unique: bool = False
    case_sensitive: bool = False
    id_lookup: bool = False
    calculated: bool = False
    formula: str | None = None
    custom: bool = False
    defaulted_on_create: bool = False
    default_value: Any = None
    picklist_values: list[PicklistValue] = dc_field(default_factory=list)
    restricted_picklist: bool = False
    reference_to: list[str] = dc_field(default_factory=list)
    relationship_name: str | None = None
    soap_type: str = "xsd:string"

    @property
    def required_on_create(self) -> bool:
        """Salesforce's rule: not nillable, not defaulted, createable, not boolean → required on insert."""
        return (not self.nillable and not self.defaulted_on_create and self.createable
                and self.type != "boolean" and not self.calculated)

    def describe(self) -> dict[str, Any]:
        """This field's entry in `fields[]` of an sObject describe."""
        byte_length = self.length * 3 if self.type in STRING_TYPES else self.length
        return {
            "name": self.name, "label": self.label, "type": self.type, "soapType": self.soap_type,
            "length": self.length, "byteLength": byte_length, "precision": self.precision,
            "scale": self.scale, "digits": self.digits,
            "createable": self.createable, "updateable": self.updateable, "filterable": self.filterable,
            "sortable": self.type not in ("textarea", "multipicklist"), "groupable": self.filterable,
            "nillable": self.nillable, "unique": self.unique, "externalId": self.external_id,
            "idLookup": self.id_lookup, "calculated": self.calculated,
            "calculatedFormula": self.formula, "caseSensitive": self.case_sensitive,
            "custom": self.custom, "autoNumber": False, "defaultedOnCreate": self.defaulted_on_create,
            "defaultValue": self.default_value, "restrictedPicklist": self.restricted_picklist,
            "picklistValues": [
                {"value": p.value, "label": p.label, "active": p.active, "defaultValue": p.default,
                 "validFor": None}
                for p in self.picklist_values
            ],
            "referenceTo": list(self.reference_to), "relationshipName": self.relationship_name,
            "deprecatedAndHidden": False, "htmlFormatted": False, "nameField": self.name == "Name",
            "polymorphicForeignKey": len(self.reference_to) > 1,
        }


@dataclass
class Condition:
    """A declarative predicate over a record: `field` compared by `op` (eq, ne, blank, not_blank, gt, lt,
    contains, not_contains) with `value`; or `all` / `any` of nested conditions."""

    field: str | None = None
    op: str = "eq"
    value: Any = None
    all: list[Condition] = dc_field(default_factory=list)
    any: list[Condition] = dc_field(default_factory=list)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Condition:
        return cls(
            field=raw.get("field"), op=raw.get("op", "eq"), value=raw.get("value"),
            all=[cls.parse(c) for c in raw.get("all", [])], any=[cls.parse(c) for c in raw.get("any", [])],
        )


@dataclass
class ValidationRule:
    """Fails a create or update with FIELD_CUSTOM_VALIDATION_EXCEPTION when `condition` holds."""

    name: str
    condition: Condition
    message: str
    error_field: str | None = None
    active: bool = True


@dataclass
class DuplicateRule:
    """Blocks (or only reports) a create/update whose `match_fields` equal an existing record's
    (case-insensitively) with DUPLICATES_DETECTED; `match_object` may differ (e.g. Lead vs Contact)."""

    name: str
    match_fields: list[str]
    match_object: str | None = None
    allow_save: bool = False
    message: str = "Use one of these records?"
    active: bool = True


MASTER_RECORD_TYPE_ID = "012000000000000AAA"


@dataclass
class RecordType:
    """A record type: `picklists` holds, per picklist field, the values available in this record type (a field
    not listed offers all of its values). `available` and `default` are per user (permissions.py narrows them:
    the org YAML's flags are what a user without a profile gets)."""

    id: str
    developer_name: str
    name: str
    default: bool = False
    person: bool = False
    active: bool = True
    available: bool = True
    picklists: dict[str, list[str]] = dc_field(default_factory=dict)

    def info(self, version: str, object_name: str) -> dict[str, Any]:
        """This record type's entry in describe's `recordTypeInfos`."""
        return {"name": self.name, "developerName": self.developer_name, "recordTypeId": self.id,
                "available": self.available and self.active, "defaultRecordTypeMapping": self.default,
                "master": False, "active": self.active,
                "urls": {"layout": f"/services/data/v{version}/sobjects/{object_name}/describe/layouts/{self.id}"}}


@dataclass
class ObjectDef:
    """One sObject: its fields by API name, rules, record types and key prefix."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    custom: bool
    fields: dict[str, FieldDef]
    validation_rules: list[ValidationRule] = dc_field(default_factory=list)
    duplicate_rules: list[DuplicateRule] = dc_field(default_factory=list)
    record_types: list[RecordType] = dc_field(default_factory=list)
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    queryable: bool = True

    def field(self, name: str) -> FieldDef | None:
        """The field named `name`, matched case-insensitively as Salesforce does."""
        return self._by_lower().get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field whose relationshipName is `name` (case-insensitive)."""
        lowered = name.lower()
        for f in self.fields.values():
            if f.relationship_name and f.relationship_name.lower() == lowered:
                return f
        return None

    def _by_lower(self) -> dict[str, FieldDef]:
        cache = self.__dict__.get("_lower_cache")
        if cache is None or len(cache) != len(self.fields):
            cache = {k.lower(): v for k, v in self.fields.items()}
            self.__dict__["_lower_cache"] = cache
        return cache

    def record_type(self, record_type_id: str) -> RecordType | None:
        """The record type with this Id (15 or 18 characters), whether or not the user may use it."""
        return next((rt for rt in self.record_types if rt.id[:15] == record_type_id[:15]), None)

    def default_record_type(self) -> RecordType | None:
        """The record type a create without RecordTypeId gets: the user's default (the org's for a user
        without a profile), else the first available active one."""
        usable = [rt for rt in self.record_types if rt.active and rt.available]
        return next((rt for rt in usable if rt.default), usable[0] if usable else None)

    def urls(self, version: str) -> dict[str, str]:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}

    def summary(self, version: str) -> dict[str, Any]:
        """This object's entry in the global describe."""
        return {
            "name": self.name, "label": self.label, "labelPlural": self.label_plural, "custom": self.custom,
            "keyPrefix": self.key_prefix, "createable": self.createable, "updateable": self.updateable,
            "deletable": self.deletable, "queryable": self.queryable, "retrieveable": True,
            "searchable": True, "layoutable": True, "triggerable": True, "replicateable": True,
            "undeletable": True, "mergeable": self.name in ("Account", "Contact", "Lead"),
            "customSetting": False, "deprecatedAndHidden": False, "feedEnabled": False,
            "activateable": False, "urls": self.urls(version),
        }

    def describe(self, version: str, child_relationships: list[dict[str, Any]]) -> dict[str, Any]:
        """The full sObject describe."""
        out = self.summary(version)
        out["urls"] = out["urls"] | {"compactLayouts": f"/services/data/v{version}/sobjects/{self.name}/describe/compactLayouts"}
        out["fields"] = [f.describe() for f in self.fields.values()]
        out["childRelationships"] = child_relationships
        # Salesforce lists the Master record type after the others; it is the one in use (available, default)
        # only on an object without record types of its own.
        own = not self.record_types
        out["recordTypeInfos"] = [rt.info(version, self.name) for rt in self.record_types] + [
            {"name": "Master", "developerName": "Master", "recordTypeId": MASTER_RECORD_TYPE_ID,
             "available": own, "defaultRecordTypeMapping": own, "master": True, "active": True,
             "urls": {"layout": f"/services/data/v{version}/sobjects/{self.name}/describe/layouts/"
                                f"{MASTER_RECORD_TYPE_ID}"}}]
        return out

    def picklist_values(self, version: str, record_type_id: str, field_name: str | None = None
                        ) -> dict[str, Any] | None:
        """UI API picklist values of one record type (Master: every active value): one field's
        (`.../picklist-values/{recordTypeId}/{field}`) or every picklist's (`.../picklist-values/{recordTypeId}`,
        under `picklistFieldValues`); None for an unknown record type or field."""
        master = record_type_id[:15] == MASTER_RECORD_TYPE_ID[:15]
        rt = None if master else self.record_type(record_type_id)
        if rt is None and not master:
            return None
        base = f"/services/data/v{version}/ui-api/object-info/{self.name}/picklist-values/{record_type_id}"

        def one(fd: FieldDef) -> dict[str, Any]:
            allowed = rt.picklists.get(fd.name) if rt else None
            values = [p for p in fd.picklist_values if p.active and (allowed is None or p.value in allowed)]
            default = next((p for p in values if p.default), None)
            return {"controllerValues": {}, "defaultValue": _ui_value(default) if default else None,
                    "eTag": f"{self.name}-{record_type_id}-{fd.name}-{len(values)}",
                    "url": f"{base}/{fd.name}", "values": [_ui_value(p) for p in values]}

        picklists = [f for f in self.fields.values() if f.type in ("picklist", "multipicklist")]
        if field_name is not None:
            fd = self.field(field_name)
            return one(fd) if fd is not None and fd in picklists else None
        return {"eTag": f"{self.name}-{record_type_id}", "picklistFieldValues": {f.name: one(f) for f in picklists}}


@dataclass
class ClientApp:
    """A connected app: consumer key and secret, and the certificate or public key JWTs are checked with."""

    client_id: str
    client_secret: str | None = None
    jwt_public_key: str | None = None  # PEM: a public key or an X.509 certificate
    run_as: str | None = None  # username for client_credentials


@dataclass
class User:
    """A user of the org; with a `profile`, what they see and change is limited (permissions.py)."""

    username: str
    password: str
    id: str
    profile: str | None = None  # None: full access, as a System Administrator
    permission_sets: list[str] = dc_field(default_factory=list)


@dataclass
class Org:
    """The whole org definition; runtime state (records, tokens, usage) lives elsewhere."""

    org_id: str
    name: str
    objects: dict[str, ObjectDef]
    clients: list[ClientApp]
    users: list[User]
    api_daily_max: int = 100_000
    token_lifetime_seconds: int = 7200
    faults: dict[str, Any] = dc_field(default_factory=dict)
    profiles: dict[str, Grant] = dc_field(default_factory=dict)
    permission_sets: dict[str, Grant] = dc_field(default_factory=dict)

    def user(self, user_id: str) -> User | None:
        """The user with this Id."""
        return next((u for u in self.users if u.id == user_id), None)

    def object(self, name: str) -> ObjectDef | None:
        """The object named `name`, matched case-insensitively."""
        lowered = name.lower()
        for key, obj in self.objects.items():
            if key.lower() == lowered:
                return obj
        return None

    def object_for_id(self, record_id: str) -> ObjectDef | None:
        """The object whose key prefix starts `record_id`."""
        prefix = record_id[:3]
        for obj in self.objects.values():
            if obj.key_prefix == prefix:
                return obj
        return None

    def child_relationships(self, parent: str) -> list[dict[str, Any]]:
        out = []
        for obj in self.objects.values():
            for f in obj.fields.values():
                if f.type == "reference" and parent in f.reference_to and f.name not in _SYSTEM_FIELDS:
                    out.append({"field": f.name, "childSObject": obj.name, "cascadeDelete": False,
                                "deprecatedAndHidden": False, "restrictedDelete": False,
                                "relationshipName": obj.label_plural.replace(" ", "") if not obj.custom
                                else obj.name.removesuffix("__c") + "s__r"})
        return out


def _ui_value(p: PicklistValue) -> dict[str, Any]:
    """One value of a UI API Picklist Values response."""
    return {"attributes": None, "label": p.label, "validFor": [], "value": p.value}


def _field_from_yaml(name: str, raw: dict[str, Any], custom_object: bool) -> FieldDef:
    raw = dict(raw)
    ftype = raw.pop("type", "string")
    defaults = _TYPE_DEFAULTS[ftype]
    required = raw.pop("required", False)
    calculated = raw.pop("calculated", False) or "formula" in raw
    read_only = raw.pop("read_only", False) or calculated
    picklist = raw.pop("picklist", None) or []
    is_custom = name.endswith("__c")
    fd = FieldDef(
        name=name,
        type=ftype,
        label=raw.pop("label", name.removesuffix("__c").replace("_", " ")),
        length=raw.pop("length", defaults.get("length", 0)),
        precision=raw.pop("precision", defaults.get("precision", 0)),
        scale=raw.pop("scale", defaults.get("scale", 0)),
        digits=raw.pop("digits", defaults.get("digits", 0)),
        soap_type=defaults["soapType"],
        createable=raw.pop("createable", not read_only),
        updateable=raw.pop("updateable", not read_only),
        filterable=raw.pop("filterable", ftype not in ("textarea",) or raw.get("length", 255) <= 255),
        nillable=raw.pop("nillable", not required and ftype != "boolean"),
        external_id=raw.pop("external_id", False),
        unique=raw.pop("unique", False),
        case_sensitive=raw.pop("case_sensitive", False),
        id_lookup=raw.pop("id_lookup", False),
        calculated=calculated,
        formula=raw.pop("formula", None),
        custom=is_custom,
        defaulted_on_create=raw.pop("defaulted_on_create", ftype == "boolean" or "default" in raw),
        default_value=raw.pop("default", False if ftype == "boolean" else None),
        picklist_values=[
            PicklistValue(value=str(p), label=str(p), default=False) if not isinstance(p, dict)
            else PicklistValue(value=p["value"], label=p.get("label", p["value"]), active=p.get("active", True),
                               default=p.get("default", False))
            for p in picklist
        ],
        restricted_picklist=raw.pop("restricted", False),
        reference_to=list(raw.pop("reference_to", [])),
        relationship_name=raw.pop("relationship_name", None),
    )
    if fd.external_id or fd.unique:
        fd.id_lookup = True
    if fd.type == "reference" and fd.relationship_name is None:
        fd.relationship_name = name[:-3] + "__r" if is_custom else name.removesuffix("Id")
    if raw:
        raise ValueError(f"field {name}: unknown keys {sorted(raw)}")
    del custom_object
    return fd


def _object_from_yaml(name: str, raw: dict[str, Any]) -> ObjectDef:
    custom = name.endswith("__c")
    fields: dict[str, FieldDef] = {}
    for fname, fraw in _SYSTEM_FIELDS.items():
        fields[fname] = _field_from_yaml(fname, fraw | {}, custom)
        fields[fname].custom = False
    if raw.get("owner", True):
        fields["OwnerId"] = _field_from_yaml("OwnerId", dict(_OWNER_FIELD), custom)
    for fname, fraw in (raw.get("fields") or {}).items():
        fields[fname] = _field_from_yaml(fname, fraw or {}, custom)
    if raw.get("record_types") and "RecordTypeId" not in fields:  # every object with record types has it
        fields["RecordTypeId"] = _field_from_yaml("RecordTypeId", dict(_RECORD_TYPE_FIELD), custom)
    return ObjectDef(
        name=name,
        label=raw.get("label", name.removesuffix("__c").replace("_", " ")),
        label_plural=raw.get("label_plural", raw.get("label", name.removesuffix("__c").replace("_", " ")) + "s"),
        key_prefix=raw["key_prefix"],
        custom=custom,
        fields=fields,
        validation_rules=[
            ValidationRule(name=r["name"], condition=Condition.parse(r["condition"]), message=r["message"],
                           error_field=r.get("error_field"), active=r.get("active", True))
            for r in raw.get("validation_rules", [])
        ],
        duplicate_rules=[
            DuplicateRule(name=r["name"], match_fields=list(r["match_fields"]), match_object=r.get("match_object"),
                          allow_save=r.get("allow_save", False), message=r.get("message", "Use one of these records?"),
                          active=r.get("active", True))
            for r in raw.get("duplicate_rules", [])
        ],
        record_types=[_record_type_from_yaml(name, rt, fields) for rt in raw.get("record_types", [])],
    )


def _record_type_from_yaml(obj: str, raw: dict[str, Any], fields: dict[str, FieldDef]) -> RecordType:
    unknown = set(raw) - {"id", "developer_name", "name", "default", "person", "active", "picklists"}
    if unknown:
        raise ValueError(f"{obj} record type {raw.get('developer_name')}: unknown keys {sorted(unknown)}")
    if not str(raw["id"]).startswith("012"):
        raise ValueError(f"{obj} record type {raw['developer_name']}: an Id starts with 012 (RecordType)")
    picklists = {str(k): [str(v) for v in vs] for k, vs in (raw.get("picklists") or {}).items()}
    for fname, values in picklists.items():
        fd = fields.get(fname)
        if fd is None or fd.type not in ("picklist", "multipicklist"):
            raise ValueError(f"{obj} record type {raw['developer_name']}: {fname} is not a picklist field")
        strangers = set(values) - {p.value for p in fd.picklist_values}
        if strangers:
            raise ValueError(f"{obj} record type {raw['developer_name']}: {fname} has no values {sorted(strangers)}")
    return RecordType(id=raw["id"], developer_name=raw["developer_name"], name=raw.get("name", raw["developer_name"]),
                      default=raw.get("default", False), person=raw.get("person", False),
                      active=raw.get("active", True), picklists=picklists)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def default_org_yaml() -> dict[str, Any]:
    """The shipped default org as parsed YAML."""
    text = resources.files("salesforce_emulator").joinpath("default_org.yaml").read_text()
    return yaml.safe_load(text)


def load_org(path: str | Path | None = None) -> Org:
    """Load an org YAML (merged over the default org when it says `extends: default`), or the default org."""
    raw = default_org_yaml()
    if path is not None:
        own = yaml.safe_load(Path(path).read_text()) or {}
        raw = _deep_merge(raw, own) if own.pop("extends", None) == "default" else own
    return build_org(raw)


def build_org(raw: dict[str, Any]) -> Org:
    """Build an Org from parsed YAML."""
    meta = raw.get("org", {})
    objects = {name: _object_from_yaml(name, body or {}) for name, body in (raw.get("objects") or {}).items()}
    clients = [
        ClientApp(client_id=c["client_id"], client_secret=c.get("client_secret"),
                  jwt_public_key=c.get("jwt_public_key"), run_as=c.get("run_as"))
        for c in raw.get("clients", [])
    ]
    users = [User(username=u["username"], password=u["password"], id=u["id"], profile=u.get("profile"),
                  permission_sets=list(u.get("permission_sets") or [])) for u in raw.get("users", [])]
    profiles = parse_grants(raw.get("profiles"), "profile")
    permission_sets = parse_grants(raw.get("permission_sets"), "permission set")
    for u in users:
        if u.profile is not None and u.profile not in profiles:
            raise ValueError(f"user {u.username}: unknown profile {u.profile!r}")
        unknown = [p for p in u.permission_sets if p not in permission_sets]
        if unknown:
            raise ValueError(f"user {u.username}: unknown permission sets {unknown}")
    return Org(
        org_id=meta.get("id", "00D8c0000000001AAA"),
        name=meta.get("name", "Emulator"),
        objects=objects,
        clients=clients,
        users=users,
        api_daily_max=meta.get("api_daily_max", 100_000),
        token_lifetime_seconds=meta.get("token_lifetime_seconds", 7200),
        faults=raw.get("faults", {}) or {},
        profiles=profiles,
        permission_sets=permission_sets,
    )
