"""What publishing refuses, as exceptions callers can catch (all are ValueError)."""


class PublishError(ValueError):
    """Base class: the event was not published and nothing was written."""


class UnknownEventType(PublishError):
    pass


class InvalidPayload(PublishError):
    pass


class PayloadTooLarge(PublishError):
    pass
