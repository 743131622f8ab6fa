"""Model updates from production feedback: labelled inputs gathered from the nodes, a
candidate trained from them, judged, stored and (optionally) swapped in behind the gates."""
