"""The panels of the Training Inspector window; each observes the controller and draws a record."""
