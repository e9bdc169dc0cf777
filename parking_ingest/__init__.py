"""Parking operator records (car-park sessions of subscribers): input formats, row
validation, conversion to the ``records`` table."""
