-- The operators' contract: names and columns stay stable whatever the generation.
-- {s} is replaced by the generation's schema name; run in the swap's transaction (activate).

CREATE OR REPLACE VIEW public.venues AS
SELECT district, venue_id, name, kind, street, address,
       first_responsible_name, first_responsible_phone, officer_name, officer_phone,
       registered_at
FROM {s}.venues;

CREATE OR REPLACE VIEW public.issue_status AS
SELECT issue_id, district, venue_id, phase, item_code, category, severity,
       CASE WHEN closed_at IS NOT NULL THEN 'closed'
            WHEN due_at IS NULL THEN 'open'
            WHEN due_at < now() THEN 'overdue'
            ELSE 'rectifying' END AS status,
       found_at, due_at, order_no, closed_at, closed_on_time, recheck_failures, rebound,
       assignee, description
FROM {s}.issues;

CREATE OR REPLACE VIEW public.venue_phase_summary AS
SELECT c.district, c.venue_id, COALESCE(v.kind, 'unregistered') AS venue_kind, c.phase,
       c.inspections, c.issues_found,
       COALESCE(o.issues_open, 0) AS issues_open,
       COALESCE(o.issues_overdue, 0) AS issues_overdue,
       c.issues_closed, c.closed_on_time, c.recheck_failures, c.rebounds, c.last_inspected_at
FROM {s}.venue_phase_counts c
LEFT JOIN {s}.venues v ON v.district = c.district AND v.venue_id = c.venue_id
LEFT JOIN LATERAL (
    SELECT count(*)::integer AS issues_open,
           (count(*) FILTER (WHERE i.due_at < now()))::integer AS issues_overdue
    FROM {s}.issues i
    WHERE i.district = c.district AND i.venue_id = c.venue_id AND i.phase = c.phase
      AND i.closed_at IS NULL
) o ON true;

CREATE OR REPLACE VIEW public.phase_summary AS
SELECT phase, venue_kind,
       (count(*) FILTER (WHERE inspections > 0))::integer AS venues_inspected,
       sum(inspections)::integer AS inspections,
       sum(issues_found)::integer AS issues_found,
       sum(issues_open)::integer AS issues_open,
       sum(issues_overdue)::integer AS issues_overdue,
       sum(issues_closed)::integer AS issues_closed,
       sum(closed_on_time)::integer AS closed_on_time,
       sum(recheck_failures)::integer AS recheck_failures,
       sum(rebounds)::integer AS rebounds,
       max(last_inspected_at) AS last_inspected_at
FROM public.venue_phase_summary
GROUP BY phase, venue_kind;

CREATE OR REPLACE VIEW public.event_archive AS
SELECT stream_seq, event_id, event_type, district, venue_id, phase, occurred_at, subject,
       convert_from(payload, 'UTF8')::json AS payload, recorded_at
FROM {s}.event_archive;

-- The district's own figures: phase_summary per district (several districts share a deployment).
CREATE OR REPLACE VIEW public.district_phase_summary AS
SELECT district, phase, venue_kind,
       (count(*) FILTER (WHERE inspections > 0))::integer AS venues_inspected,
       sum(inspections)::integer AS inspections,
       sum(issues_found)::integer AS issues_found,
       sum(issues_open)::integer AS issues_open,
       sum(issues_overdue)::integer AS issues_overdue,
       sum(issues_closed)::integer AS issues_closed,
       sum(closed_on_time)::integer AS closed_on_time,
       sum(recheck_failures)::integer AS recheck_failures,
       sum(rebounds)::integer AS rebounds,
       max(last_inspected_at) AS last_inspected_at
FROM public.venue_phase_summary
GROUP BY district, phase, venue_kind;

-- The street offices' roll-up (街道): a venue counts under the street of its registration; a
-- venue not yet registered has no street (NULL).
CREATE OR REPLACE VIEW public.street_summary AS
SELECT s.district, v.street, s.phase,
       count(*)::integer AS venues,
       (count(*) FILTER (WHERE s.inspections > 0))::integer AS venues_inspected,
       sum(s.inspections)::integer AS inspections,
       sum(s.issues_found)::integer AS issues_found,
       sum(s.issues_open)::integer AS issues_open,
       sum(s.issues_overdue)::integer AS issues_overdue,
       sum(s.issues_closed)::integer AS issues_closed,
       sum(s.closed_on_time)::integer AS closed_on_time,
       sum(s.rebounds)::integer AS rebounds
FROM public.venue_phase_summary s
LEFT JOIN {s}.venues v ON v.district = s.district AND v.venue_id = s.venue_id
GROUP BY s.district, v.street, s.phase;
