"""Marshmallow fields shared by several blueprints."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from marshmallow import ValidationError, fields

MAX_AMOUNT = Decimal("100000000")  # Numeric(12, 2) holds up to 9,999,999,999.99


class Money(fields.Decimal):
    """A non-negative amount with at most two decimal places, sent and returned as a JSON number."""

    def __init__(self, **kwargs):
        super().__init__(places=None, as_string=False, allow_nan=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            raise ValidationError("Must be a number.")
        try:
            amount = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValidationError("Must be a number.") from exc
        if not amount.is_finite():
            raise ValidationError("Must be a finite number.")
        if amount < 0:
            raise ValidationError("Must not be negative.")
        if amount >= MAX_AMOUNT:  # before quantize(): a huge value would overflow its precision
            raise ValidationError(f"Must be less than {MAX_AMOUNT}.")
        if int(amount.normalize().as_tuple().exponent) < -2:  # finite: an int, never n/N/F
            raise ValidationError("At most two decimal places.")
        return amount.quantize(Decimal("0.01"))

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return float(Decimal(value).quantize(Decimal("0.01")))
