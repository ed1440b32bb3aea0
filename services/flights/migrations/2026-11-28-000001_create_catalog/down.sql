DROP TABLE flights.flights;
DROP TABLE flights.destinations;
