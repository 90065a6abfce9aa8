"""Bulk API 2.0 CSV reading and result writing (salesforce_emulator.bulk_csv)."""

from __future__ import annotations

import pytest

from salesforce_emulator import bulk_csv


def test_quoted_values_keep_delimiters_doubled_quotes_and_newlines() -> None:
    parsed = bulk_csv.parse('Name,Description\n"Acme, Inc.","the ""top""\nsecond line"\n', ",")
    assert parsed.header == ["Name", "Description"]
    assert [r.values for r in parsed.rows] == [["Acme, Inc.", 'the "top"\nsecond line']]
    assert parsed.rows[0].error is None
    assert parsed.line_endings == {"LF"}


def test_values_are_not_trimmed() -> None:
    parsed = bulk_csv.parse("FirstName,LastName\nJohn, Smith \n", ",")
    assert parsed.rows[0].values == ["John", " Smith "]


def test_space_before_a_quote_is_an_error_for_that_row_only() -> None:
    parsed = bulk_csv.parse('FirstName,LastName\n"John", "Smith"\nAda,Lovelace\n', ",")
    assert parsed.rows[0].error is not None
    assert parsed.rows[1].error is None and parsed.rows[1].values == ["Ada", "Lovelace"]


def test_space_after_a_closing_quote_is_an_error_for_the_row() -> None:
    parsed = bulk_csv.parse('A,B\n"x" ,y\n', ",")
    assert parsed.rows[0].error is not None


def test_wrong_number_of_values_is_an_error_for_the_row() -> None:
    parsed = bulk_csv.parse("A,B\n1,2,3\n4\n5,6\n", ",")
    assert [r.error is not None for r in parsed.rows] == [True, True, False]


def test_unterminated_quote_makes_the_rest_one_bad_row() -> None:
    parsed = bulk_csv.parse('A,B\n1,"open\n2,3\n', ",")
    assert len(parsed.rows) == 1 and parsed.rows[0].error == "Unterminated quoted value"


@pytest.mark.parametrize("name,char", sorted(bulk_csv.DELIMITERS.items()))
def test_every_column_delimiter_splits_and_quotes(name: str, char: str) -> None:
    text = f'A{char}B\n"x{char}y"{char}z\n'
    parsed = bulk_csv.parse(text, char)
    assert parsed.header == ["A", "B"], name
    assert parsed.rows[0].values == [f"x{char}y", "z"]


def test_comma_is_plain_text_under_another_delimiter() -> None:
    parsed = bulk_csv.parse("Name|City\nAcme, Inc.|Paris\n", "|")
    assert parsed.rows[0].values == ["Acme, Inc.", "Paris"]


def test_crlf_records_are_reported_as_crlf_and_values_lose_the_cr() -> None:
    parsed = bulk_csv.parse('A,B\r\n1,"two"\r\n3,4\r\n', ",")
    assert parsed.line_endings == {"CRLF"}
    assert [r.values for r in parsed.rows] == [["1", "two"], ["3", "4"]]
    assert [r.raw for r in parsed.rows] == ['1,"two"', "3,4"]


def test_mixed_line_endings_are_all_reported() -> None:
    parsed = bulk_csv.parse("A\r\n1\n2\r\n", ",")
    assert parsed.line_endings == {"LF", "CRLF"}


def test_crlf_inside_quotes_is_data_not_a_line_ending() -> None:
    parsed = bulk_csv.parse('A,B\n"line1\r\nline2",x\n', ",")
    assert parsed.line_endings == {"LF"}
    assert parsed.rows[0].values == ["line1\r\nline2", "x"]


def test_last_record_without_line_ending_and_blank_lines_are_handled() -> None:
    parsed = bulk_csv.parse("Id\n001\n\n002", ",")
    assert [r.values for r in parsed.rows] == [["001"], ["002"]]


def test_decode_strips_bom_and_rejects_non_utf8() -> None:
    assert bulk_csv.decode("\ufeffName\nÉlodie\n".encode()) == "Name\nÉlodie\n"
    assert bulk_csv.decode(b"Name\n\xff\xfe\n") is None


def test_raw_row_text_is_kept_for_unprocessed_records() -> None:
    parsed = bulk_csv.parse('Name,Note\n"Acme ""A""",x\n', ",")
    assert parsed.rows[0].raw == '"Acme ""A""",x'
    assert bulk_csv.write_raw(parsed.header_raw, [r.raw for r in parsed.rows], "\n") == \
        'Name,Note\n"Acme ""A""",x\n'


def test_results_quote_system_columns_and_non_empty_values() -> None:
    text = bulk_csv.write_results(
        ["sf__Id", "sf__Error"], ["Name", "NumberOfEmployees"],
        [(["", "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"], ["", "123"]),
         (["001", "X:y:--"], ['say "hi"', ""])],
        ",", "\n")
    assert text == ('"sf__Id","sf__Error",Name,NumberOfEmployees\n'
                    '"","REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --",,"123"\n'
                    '"001","X:y:--","say ""hi""",\n')


def test_results_use_the_job_delimiter_and_line_ending() -> None:
    text = bulk_csv.write_results(["sf__Id", "sf__Created"], ["Name"], [(["001", "true"], ["a;b"])], ";", "\r\n")
    assert text == '"sf__Id";"sf__Created";Name\r\n"001";"true";"a;b"\r\n'
