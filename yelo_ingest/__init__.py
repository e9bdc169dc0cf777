"""Yélo operator records (bus and sea-shuttle validations, bike-share rentals, car-share
bookings): input formats, row validation, conversion to the ``records`` table."""
