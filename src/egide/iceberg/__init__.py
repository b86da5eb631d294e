"""An Apache Iceberg REST catalog served by the gateway under `/_iceberg/v1/`
(docs/decisions/0040-iceberg-rest-catalog.md): `http` answers the REST API, `tables` keeps
the metadata files (PyIceberg's model) as objects of the warehouse bucket."""
