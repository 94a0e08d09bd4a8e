"""What publishing refuses, as exceptions callers can catch (all are ValueError)."""


class PublishError(ValueError):
    """Base class: the event was not published and nothing was written."""


class UnknownEventType(PublishError):
    pass


class InvalidPayload(PublishError):
    pass


class PayloadTooLarge(PublishError):
    pass


class SchemaViolation(InvalidPayload):
    """The data breaks its type's JSON Schema (schema mode ``enforce``): ``violations`` says where and which rule."""

    def __init__(self, event_type: str, violations: list["Violation"]) -> None:
        self.event_type = event_type
        self.violations = violations
        listed = "; ".join(str(violation) for violation in violations)
        super().__init__(f"The data does not match the schema of {event_type}: {listed}.")


class Violation:
    """One broken rule: where in the event (``data.contact.id``), which keyword of the schema, and why."""

    __slots__ = ("message", "path", "rule")

    def __init__(self, path: str, rule: str, message: str) -> None:
        self.path, self.rule, self.message = path, rule, message

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (rule: {self.rule})"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "rule": self.rule, "message": self.message}
