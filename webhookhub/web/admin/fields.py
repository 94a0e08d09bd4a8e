"""Form fields the admin's forms share."""

from django import forms


class JSONTextField(forms.JSONField):
    """JSON typed into a text area: empty when there is no value (Django's shows the text ``null``)."""

    def prepare_value(self, value):
        if value is None:
            return ""
        return super().prepare_value(value)
