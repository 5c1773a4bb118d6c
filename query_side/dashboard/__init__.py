"""The dashboard: pages for people who would rather look, served by the query host behind Django's
login. Each page is a template and a small ES module that reads the query API with the session;
the pages never read the database themselves, beyond which projects the user may open."""
