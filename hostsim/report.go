package hostsim

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Summary is one line: how many checks passed and failed.
func (r Report) Summary() string {
	failed := len(r.Failed())
	return fmt.Sprintf("conformance of %s: %d checks, %d passed, %d failed", r.DescriptorURL, len(r.Checks), len(r.Checks)-failed, failed)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML, one testcase per check, for CI.
func (r Report) WriteJUnit(w io.Writer) error {
	failed := len(r.Failed())
	secs := func(d interface{ Seconds() float64 }) string { return fmt.Sprintf("%.3f", d.Seconds()) }
	suite := junitSuite{
		Name:       "realmctl host conformance",
		Tests:      len(r.Checks),
		Failures:   failed,
		Time:       secs(r.Duration),
		Timestamp:  r.Started.UTC().Format("2006-01-02T15:04:05"),
		Properties: []junitProperty{{Name: "descriptor", Value: r.DescriptorURL}},
	}
	for _, c := range r.Checks {
		class, _, _ := strings.Cut(c.Name, "/")
		jc := junitCase{Name: c.Name, ClassName: "conformance." + class, Time: secs(c.Duration)}
		if c.Passed {
			jc.SystemOut = c.Detail
		} else {
			jc.Failure = &junitFailure{Message: c.Detail, Type: "conformance", Text: c.Detail}
		}
		suite.Cases = append(suite.Cases, jc)
	}
	doc := junitSuites{Name: suite.Name, Tests: suite.Tests, Failures: failed, Time: suite.Time, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
